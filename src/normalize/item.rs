//! An item's JSON members, indexed once so that a column finds its value by name in any case
//! (`pcToBCExchangeRate`, `PCToBCExchangeRate`), or by a dotted path into nested objects and
//! arrays.
//!
//! In: one item's JSON text as the page holds it. Out: an [`Item`] that hands out each member as
//! a [`Raw`] value borrowed from the page, by name or by a [`MemberPath`] hashed once for many
//! items; and [`FoldedNames`], a set of names matched the same way. It parses no value (that is
//! `decode`'s) and knows no column.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;

use serde_json::value::RawValue;

use super::decode::Raw;

/// A member name, borrowed unless it has escapes.
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a member name")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        deserializer.deserialize_str(Visit)
    }
}

/// The members of a JSON object in order, each value left as its raw text.
struct Members<'a>(Vec<(Key<'a>, &'a RawValue)>);

impl<'de> serde::Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: serde::de::MapAccess<'de>>(self, mut map: M) -> Result<Members<'de>, M::Error> {
                let mut members = Vec::with_capacity(map.size_hint().unwrap_or(64));
                while let Some(key) = map.next_key::<Key<'de>>()? {
                    let value: &'de RawValue = map.next_value()?;
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(Visit)
    }
}

/// The JSON members of an item, looked up case-insensitively (`pcToBCExchangeRate`,
/// `PCToBCExchangeRate` and `pCToBCExchangeRate` are one field). A member given twice, in the
/// same or another spelling, is an error unless both say the same: no value silently wins. Values stay raw text borrowed from the page: decoding an item
/// allocates only its index.
pub struct Item<'a> {
    members: HashMap<u64, Member<'a>, BuildHasherDefault<Prehashed>>,
}

/// A member and any other member whose lower-cased name hashes alike (almost never).
struct Member<'a> {
    name: Cow<'a, str>,
    value: &'a RawValue,
    others: Vec<(Cow<'a, str>, &'a RawValue)>,
}

/// A case-insensitive hash of a name, eight bytes at a time: each byte has its `0x20` bit set
/// before mixing, so ASCII letters hash alike in either case (other bytes may collide, which the
/// comparison after the lookup sorts out). Computed once per member and once per column path.
fn folded_hash(name: &str) -> u64 {
    const K: u64 = 0x9e37_79b9_7f4a_7c15;
    const CASE: u64 = 0x2020_2020_2020_2020;
    let mix = |h: u64, word: u64| (h.rotate_left(5) ^ (word | CASE)).wrapping_mul(K);
    let bytes = name.as_bytes();
    let mut h = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        h = mix(h, u64::from_le_bytes(word));
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut word = [0u8; 8];
        word[..rest.len()].copy_from_slice(rest);
        h = mix(h, u64::from_le_bytes(word));
    }
    h ^ (h >> 29)
}

/// The keys are hashes already.
#[derive(Default)]
struct Prehashed(u64);

impl std::hash::Hasher for Prehashed {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

impl<'a> Item<'a> {
    /// Indexes an item from its JSON bytes: UTF-8 is checked once, fast, and the parser does not
    /// check it again; text that is not UTF-8 gets the parser's own account of where it is not.
    pub fn parse(text: &'a [u8]) -> Result<Item<'a>, String> {
        match simdutf8::basic::from_utf8(text) {
            Ok(text) => Item::new(text),
            Err(_) => Err(serde_json::from_slice::<Members<'_>>(text)
                .err()
                .map_or_else(|| "the text is not UTF-8".to_owned(), |e| e.to_string())),
        }
    }

    /// Indexes an item from its JSON text; an error unless it is a JSON object.
    pub fn new(text: &'a str) -> Result<Item<'a>, String> {
        let Members(object) = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let mut members: HashMap<u64, Member<'a>, BuildHasherDefault<Prehashed>> =
            HashMap::with_capacity_and_hasher(object.len(), BuildHasherDefault::default());
        for (Key(name), value) in object {
            match members.entry(folded_hash(&name)) {
                std::collections::hash_map::Entry::Vacant(slot) => {
                    slot.insert(Member { name, value, others: Vec::new() });
                }
                std::collections::hash_map::Entry::Occupied(mut slot) => {
                    let member = slot.get_mut();
                    let earlier = if member.name.eq_ignore_ascii_case(&name) {
                        Some((&member.name, member.value))
                    } else {
                        member.others.iter().find(|(n, _)| n.eq_ignore_ascii_case(&name)).map(|(n, v)| (n, *v))
                    };
                    match earlier {
                        Some((_, earlier)) if earlier.get().trim() == value.get().trim() => {}
                        Some((first, _)) => {
                            return Err(if *first == name {
                                format!("the member {name:?} appears twice with different values")
                            } else {
                                format!("the member {first:?} appears twice (also as {name:?}) with different values")
                            });
                        }
                        None => member.others.push((name, value)),
                    }
                }
            }
        }
        Ok(Item { members })
    }

    fn raw(&self, name: &str) -> Option<&'a RawValue> {
        self.raw_hashed(folded_hash(name), name)
    }

    fn raw_hashed(&self, hash: u64, name: &str) -> Option<&'a RawValue> {
        let member = self.members.get(&hash)?;
        if member.name.eq_ignore_ascii_case(name) {
            return Some(member.value);
        }
        member.others.iter().find(|(other, _)| other.eq_ignore_ascii_case(name)).map(|(_, v)| *v)
    }

    /// Members, counted in every spelling the item gives them.
    pub fn len(&self) -> usize {
        self.members.values().map(|m| 1 + m.others.len()).sum()
    }

    /// Whether the item has no member.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The members whose names `known` does not have, as named in the item, with their raw
    /// values (in no particular order).
    pub fn unknown(&self, known: &FoldedNames) -> Vec<(&str, &'a RawValue)> {
        let mut unknown = Vec::new();
        for (hash, m) in &self.members {
            let names =
                std::iter::once((m.name.as_ref(), m.value)).chain(m.others.iter().map(|(n, v)| (n.as_ref(), *v)));
            for (name, value) in names {
                if !known.contains_hashed(*hash, name) {
                    unknown.push((name, value));
                }
            }
        }
        unknown
    }

    /// The first of `names` (in any case) that is present.
    pub fn get(&self, names: &[&str]) -> Option<Raw<'a>> {
        names.iter().find_map(|n| self.raw(n)).map(|v| Raw::new(v.get()))
    }

    /// A value by dotted path (`companyProfile.companyName`, `entitledArtifacts.0.resourceId`),
    /// every segment matched case-insensitively.
    pub fn path(&self, path: &str) -> Option<Raw<'a>> {
        self.at(&MemberPath::new(path))
    }

    /// A value by a path whose first segment is hashed already.
    pub fn at(&self, path: &MemberPath<'_>) -> Option<Raw<'a>> {
        let mut value = self.raw_hashed(path.hash, path.first)?;
        let Some(rest) = path.rest else { return Some(Raw::new(value.get())) };
        for segment in rest.split('.') {
            let text: &'a str = value.get();
            value = match text.trim_start().as_bytes().first() {
                Some(b'{') => Item::new(text).ok()?.raw(segment)?,
                Some(b'[') => elements(text)?.get(segment.parse::<usize>().ok()?).copied()?,
                _ => return None,
            };
        }
        Some(Raw::new(value.get()))
    }
}

/// A dotted path into an item, its first segment hashed once for lookups in many items.
#[derive(Debug, Clone, Copy)]
pub struct MemberPath<'p> {
    first: &'p str,
    hash: u64,
    rest: Option<&'p str>,
}

impl<'p> MemberPath<'p> {
    /// The path `a.b.c`.
    pub fn new(path: &'p str) -> MemberPath<'p> {
        let (first, rest) = match path.split_once('.') {
            Some((first, rest)) => (first, Some(rest)),
            None => (path, None),
        };
        MemberPath { first, hash: folded_hash(first), rest }
    }
}

/// A set of member names, matched case-insensitively as [`Item`] matches them, looked up
/// without allocating.
#[derive(Debug, Clone, Default)]
pub struct FoldedNames {
    names: HashMap<u64, String, BuildHasherDefault<Prehashed>>,
    /// Names whose hash another name has already (almost never).
    others: Vec<String>,
}

impl FoldedNames {
    /// Adds a name.
    pub fn insert(&mut self, name: &str) {
        if self.contains(name) {
            return;
        }
        match self.names.entry(folded_hash(name)) {
            std::collections::hash_map::Entry::Vacant(slot) => {
                slot.insert(name.to_owned());
            }
            std::collections::hash_map::Entry::Occupied(_) => self.others.push(name.to_owned()),
        }
    }

    /// Whether the set has `name`, in any case.
    pub fn contains(&self, name: &str) -> bool {
        self.contains_hashed(folded_hash(name), name)
    }

    fn contains_hashed(&self, hash: u64, name: &str) -> bool {
        match self.names.get(&hash) {
            Some(known) if known.eq_ignore_ascii_case(name) => true,
            Some(_) => self.others.iter().any(|n| n.eq_ignore_ascii_case(name)),
            None => false,
        }
    }
}

/// The elements of a JSON array, each as raw text; `None` unless it is an array.
pub fn elements(text: &str) -> Option<Vec<&RawValue>> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::str::FromStr;

    use rust_decimal::Decimal;

    use crate::normalize::decode::{decode, normalize_key, to_decimal128};
    use crate::tabular::{ColType, Value as Decoded};
    use serde_json::Value;

    #[test]
    fn nested_paths_are_followed_case_insensitively() {
        let text = r#"{"CompanyProfile":{"companyName":"Contoso"},"entitledArtifacts":[ {"resourceId":"r1"} ]}"#;
        let item = Item::new(text).unwrap();
        assert_eq!(item.path("companyProfile.CompanyName"), Some(Raw::new("\"Contoso\"")));
        assert_eq!(item.path("entitledArtifacts.0.resourceId"), Some(Raw::new("\"r1\"")));
        assert_eq!(item.path("entitledArtifacts.1.resourceId"), None);
        assert!(Item::new("[1]").is_err());
    }

    #[test]
    fn a_member_given_twice_is_an_error_unless_both_agree() {
        let twice = Item::new(r#"{"quantity":"7","quantity":"5"}"#).err().unwrap();
        assert!(twice.contains("\"quantity\" appears twice"), "{twice}");
        let spelled = Item::new(r#"{"pcToBCExchangeRate":1,"PCToBCExchangeRate":2}"#).err().unwrap();
        assert!(spelled.contains("also as \"PCToBCExchangeRate\""), "{spelled}");
        let agreed = Item::new(r#"{"a":1,"A":1}"#).unwrap();
        assert_eq!(agreed.get(&["a"]), Some(Raw::new("1")));
    }

    #[test]
    fn every_hand_written_quirk_record_decodes_to_its_expected_value() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("samples/quirks");
        let expected: Vec<Value> = serde_json::from_slice(&std::fs::read(dir.join("expected.json")).unwrap()).unwrap();
        for e in &expected {
            let file = e["file"].as_str().unwrap();
            let doc: Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
            let record = doc.pointer(e["path"].as_str().unwrap()).unwrap().to_string();
            let item = Item::new(&record).unwrap();
            let field = e["field"].as_str().unwrap();
            let value = item.get(&[field]);
            let quirk = e["quirk"].as_str().unwrap();
            if let Some(want) = e.get("decimal") {
                let want = Decimal::from_str(want.as_str().unwrap()).unwrap();
                // Each value at exactly its own number of fractional digits: nothing lost, nothing added.
                let scale = want.normalize().scale();
                let got = decode(value, ColType::decimal(scale)).unwrap();
                assert_eq!(got, Decoded::Dec(to_decimal128(want, scale).unwrap()), "{quirk}");
                if scale > 0 {
                    assert!(
                        decode(value, ColType::decimal(scale - 1)).is_err(),
                        "{quirk}: one digit fewer must not fit"
                    );
                }
            } else if let Some(want) = e.get("utc") {
                // Instants are nanosecond timestamps; far-future calendar ends (9999-12-14) are dates.
                let want = want.to_string();
                let want = Some(Raw::new(&want));
                let ty = if decode(want, ColType::Timestamp).is_ok() { ColType::Timestamp } else { ColType::Date };
                assert_eq!(decode(value, ty).unwrap(), decode(want, ty).unwrap(), "{quirk}");
            } else if e.get("absent").is_some() {
                let ty = if field.to_lowercase().contains("date") { ColType::Timestamp } else { ColType::Utf8 };
                assert_eq!(decode(value, ty).unwrap(), Decoded::Null, "{file} {field}: {quirk}");
            } else if let Some(want) = e.get("key") {
                let Decoded::Str(raw) = decode(value, ColType::Utf8).unwrap() else { panic!("{quirk}") };
                assert_eq!(normalize_key(&raw), want.as_str().unwrap(), "{quirk}");
            } else if let Some(want) = e.get("text") {
                assert_eq!(
                    decode(value, ColType::Utf8).unwrap(),
                    Decoded::Str(want.as_str().unwrap().into()),
                    "{quirk}"
                );
            } else if let Some(want) = e.get("json") {
                let Decoded::Str(text) = decode(value, ColType::Json).unwrap() else { panic!("{quirk}") };
                assert_eq!(&serde_json::from_str::<Value>(&text).unwrap(), want, "{quirk}");
            }
        }
    }
}
