"""The README's three analyst questions, run as written in DuckDB against a demo snapshot, and
their answers compared with ones computed here from the sample world's own files (what the
emulator serves), without pcrecon: exact decimals, a line served twice counted once, customers
by their normalised id, amounts converted at the rate of their invoice's billing-period end.

Usage: python analyst_questions.py SNAPSHOT README.md WORLD; prints the number of answers checked.
"""
import duckdb, json, re, sys, os
from decimal import Decimal
from collections import defaultdict

snap, readme, world = sys.argv[1], sys.argv[2], sys.argv[3]
queries = {}
for block in re.findall(r"```sql\n(.*?)```", open(readme).read(), re.S):
    m = re.match(r"-- question: (.*)\n", block)
    if m:
        queries[m.group(1)] = block.replace("SNAP", snap)
assert set(queries) == {"cost per customer per month", "top meters", "money at risk by exception reason"}, queries.keys()
con = duckdb.connect()
run = lambda q: con.execute(q).fetchall()

# The expected answers, from the world's own files: what the emulator serves, read without pcrecon.
invoices = {}
for line in open(os.path.join(world, "invoices.jsonl")):
    inv = json.loads(line, parse_float=Decimal)
    invoices[inv["id"]] = (inv["billingPeriodStartDate"][:7], inv["billingPeriodEndDate"][:10])
rates = {}
for line in open(os.path.join(world, "rates.csv")).read().splitlines()[1:]:
    date, src, dst, rate = line.split(",")
    rates[(date, src, dst)] = Decimal(rate)
def dec(v):
    return Decimal(str(v))
def to_eur(amount, currency, date):
    amount = dec(amount)
    return amount if currency.upper() == "EUR" else amount * rates[(date, currency.upper(), "EUR")]
def key(customer):
    customer = customer.strip().lower()
    return customer[4:] if customer.startswith("org:") else customer
def distinct(path):
    # A line served twice is the same record twice: it counts once.
    seen = set()
    for text in open(path):
        if text not in seen:
            seen.add(text)
            yield json.loads(text, parse_float=Decimal)
names = {}
for l in open(os.path.join(world, "customers.jsonl")):
    c = json.loads(l)
    names[key(c["id"])] = c["companyProfile"]["companyName"]

cost = defaultdict(Decimal)
meters = defaultdict(lambda: [Decimal(0), Decimal(0)])
for inv, (month, end) in invoices.items():
    recon = os.path.join(world, "invoices", inv, "onetime-billinglineitems.jsonl")
    if os.path.exists(recon):
        for l in distinct(recon):
            cost[(month, key(l["customerId"]))] += to_eur(l["totalForCustomer"], l["currency"], end)
    usage = os.path.join(world, "invoices", inv, "onetime-usagelineitems.jsonl")
    if os.path.exists(usage):
        for l in distinct(usage):
            m = meters[(l["meterCategory"], l["meterName"])]
            m[0] += dec(l["quantity"])
            m[1] += to_eur(l["billingPreTaxTotal"], l["billingCurrency"], end)

checked = 0
# 1. Cost per customer per month: every (month, customer) the lines name, to the last digit.
got = run(queries["cost per customer per month"])
expected = {(month, names[customer]): value for (month, customer), value in cost.items()}
assert len(got) == len(expected) and len(got) >= 20, (len(got), len(expected))
for period, customer, currency, value in got:
    assert currency == "EUR", currency
    assert value == expected[(period, customer)], (period, customer, value, expected[(period, customer)])
    checked += 1

# 2. Top meters: the ten that cost most, in order, with their quantities.
got = run(queries["top meters"])
top = sorted(meters.items(), key=lambda kv: (-kv[1][1], kv[0][1]))[:10]
assert len(got) == min(10, len(meters)) and len(got) >= 5, (len(got), len(meters))
for (category, name, currency, quantity, value), ((e_category, e_name), (e_quantity, e_value)) in zip(got, top):
    assert (category, name, currency) == (e_category, e_name, "EUR"), (category, name, e_category, e_name)
    assert quantity == e_quantity and value == e_value, (name, quantity, e_quantity, value, e_value)
    checked += 1

# 3. Money at risk by reason: the world's planted anomalies, each with its line's amount.
truth = json.load(open(os.path.join(world, "truth.json")), parse_float=Decimal)
at_risk = defaultdict(lambda: [0, Decimal(0)])
amount_of = {"billed_recon_line_items": "totalForCustomer", "billed_consumption_line_items": "billingPreTaxTotal"}
for a in truth["anomalies"]:
    if a["dataset"] in amount_of:
        r = at_risk[(a["kind"], a["currency"])]
        r[0] += 1
        r[1] += dec(a["line"][amount_of[a["dataset"]]])
got = run(queries["money at risk by exception reason"])
assert {(reason, currency): [lines, value] for reason, currency, lines, value in got} == dict(at_risk), (got, dict(at_risk))
checked += len(got)
print(checked)
