//! Which FOCUS 1.2 service category and subcategory a Partner Center service or product is in.
//!
//! FOCUS requires every ServiceName to have one and only one ServiceCategory (`Other` when none
//! fits) and, recommended, one ServiceSubcategory of that category (`Other (<category>)` when
//! none fits). Partner Center names the service of a metered line by its meter category
//! (`Virtual Machines`, `Storage`) and that of a licence by its product name (`Microsoft 365
//! E3`); both are matched here, by the first rule whose words the name contains.
//!
//! In: a service name. Out: its category and subcategory, spelt as FOCUS 1.2 lists them.

/// A FOCUS 1.2 service category and one of its subcategories.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Service {
    /// `ServiceCategory`.
    pub category: &'static str,
    /// `ServiceSubcategory`.
    pub subcategory: &'static str,
}

const fn service(category: &'static str, subcategory: &'static str) -> Service {
    Service { category, subcategory }
}

/// Words a name contains (lower case) → its service; the first rule that matches wins, so the
/// more specific words come first.
const RULES: &[(&[&str], Service)] = &[
    (&["reserved vm", "virtual machines", "vm license", "windows server"], service("Compute", "Virtual Machines")),
    (&["kubernetes", "container"], service("Compute", "Containers")),
    (&["functions"], service("Compute", "Serverless Compute")),
    (&["windows 365", "virtual desktop"], service("Compute", "End User Computing")),
    (&["cosmos"], service("Databases", "NoSQL Databases")),
    (&["redis", "cache"], service("Databases", "Caching")),
    (&["sql", "database", "mysql", "postgresql"], service("Databases", "Relational Databases")),
    (&["backup"], service("Storage", "Backup Storage")),
    (&["managed disks", "disk"], service("Storage", "Block Storage")),
    (&["blob"], service("Storage", "Object Storage")),
    (&["files"], service("Storage", "File Storage")),
    (&["storage"], service("Storage", "Storage Platforms")),
    (&["bandwidth", "data transfer", "vpn", "expressroute"], service("Networking", "Network Connectivity")),
    (&["firewall", "ddos"], service("Networking", "Network Security")),
    (&["load balancer", "application gateway", "front door", "cdn"], service("Networking", "Application Networking")),
    (&["dns", "traffic manager"], service("Networking", "Network Routing")),
    (&["log analytics", "monitor", "insights"], service("Management and Governance", "Observability")),
    (&["intune"], service("Management and Governance", "Endpoint Management")),
    (&["support"], service("Management and Governance", "Support")),
    (&["key vault"], service("Security", "Secret Management")),
    (&["defender", "sentinel"], service("Security", "Threat Detection and Response")),
    (&["entra", "active directory", "enterprise mobility"], service("Identity", "Identity and Access Management")),
    (&["openai", "cognitive", "ai services"], service("AI and Machine Learning", "AI Platforms")),
    (&["machine learning"], service("AI and Machine Learning", "Machine Learning")),
    (&["power bi"], service("Analytics", "Business Intelligence")),
    (&["synapse", "data factory", "databricks"], service("Analytics", "Data Processing")),
    (&["app service", "static web"], service("Web", "Application Platforms")),
    (&["visual studio", "github", "devops"], service("Developer Tools", "Development Environments")),
    (
        &["microsoft 365", "office 365", "exchange", "teams", "sharepoint", "onedrive", "project", "visio"],
        service("Business Applications", "Productivity and Collaboration"),
    ),
    (
        &["dynamics 365", "power apps", "power automate"],
        service("Business Applications", "Other (Business Applications)"),
    ),
];

/// What nothing else fits.
const OTHER: Service = service("Other", "Other (Other)");

/// The service category and subcategory of a service or product name.
pub fn of(name: &str) -> Service {
    let name = name.to_lowercase();
    RULES.iter().find(|(words, _)| words.iter().any(|w| name.contains(w))).map_or(OTHER, |(_, service)| *service)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meters_and_products_have_their_categories() {
        assert_eq!(of("Virtual Machines"), service("Compute", "Virtual Machines"));
        assert_eq!(of("Reserved VM Instance, Standard_D2s_v3, US East"), service("Compute", "Virtual Machines"));
        assert_eq!(of("Standard SSD Managed Disks"), service("Storage", "Block Storage"));
        assert_eq!(of("SQL Database"), service("Databases", "Relational Databases"));
        assert_eq!(of("Bandwidth"), service("Networking", "Network Connectivity"));
        assert_eq!(of("Microsoft 365 E3"), service("Business Applications", "Productivity and Collaboration"));
        assert_eq!(of("Power BI Pro"), service("Analytics", "Business Intelligence"));
        assert_eq!(of("Contoso Firewall NVA (BYOL)"), service("Networking", "Network Security"));
        assert_eq!(of("Something else"), OTHER);
    }

    #[test]
    fn every_subcategory_is_one_focus_gives_its_category() {
        // FOCUS 1.2's ServiceSubcategory list, by parent, for the subcategories used here.
        let focus: &[(&str, &[&str])] = &[
            ("AI and Machine Learning", &["AI Platforms", "Machine Learning"]),
            ("Analytics", &["Business Intelligence", "Data Processing"]),
            ("Business Applications", &["Productivity and Collaboration", "Other (Business Applications)"]),
            ("Compute", &["Containers", "End User Computing", "Serverless Compute", "Virtual Machines"]),
            ("Databases", &["Caching", "NoSQL Databases", "Relational Databases"]),
            ("Developer Tools", &["Development Environments"]),
            ("Identity", &["Identity and Access Management"]),
            ("Management and Governance", &["Endpoint Management", "Observability", "Support"]),
            ("Networking", &["Application Networking", "Network Connectivity", "Network Routing", "Network Security"]),
            ("Security", &["Secret Management", "Threat Detection and Response"]),
            ("Storage", &["Backup Storage", "Block Storage", "File Storage", "Object Storage", "Storage Platforms"]),
            ("Web", &["Application Platforms"]),
            ("Other", &["Other (Other)"]),
        ];
        for (_, s) in RULES.iter().chain([(&[][..], OTHER)].iter()) {
            let allowed = focus.iter().find(|(c, _)| *c == s.category).map(|(_, subs)| *subs).unwrap_or_default();
            assert!(allowed.contains(&s.subcategory), "{s:?}");
        }
    }
}
