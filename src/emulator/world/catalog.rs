//! The static catalog the world is bought from: licence products, one-time products, Azure
//! meters, and the names and places of customers. Prices are USD list prices per unit and month
//! (the pricing currency of every line, as the emulator's world has it).

/// A new-commerce licence product sold per seat.
pub struct SeatProduct {
    /// Catalog identity.
    pub ids: ProductIds,
    /// USD price per seat and month on an annual term, in cents.
    pub annual_term_cents: i64,
    /// Purchase qualifiers (`productQualifiers`), empty for most products.
    pub qualifiers: &'static [&'static str],
}

/// The catalog identity of a product as line items spell it.
#[derive(Debug, Clone, Copy)]
pub struct ProductIds {
    /// `productId`.
    pub product_id: &'static str,
    /// `skuId`.
    pub sku_id: &'static str,
    /// `availabilityId`.
    pub availability_id: &'static str,
    /// `productName`.
    pub product_name: &'static str,
    /// `skuName`.
    pub sku_name: &'static str,
}

/// Licence products of the world.
pub const SEATS: &[SeatProduct] = &[
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0LH18",
            sku_id: "0001",
            availability_id: "CFQ7TTC0KBKM",
            product_name: "Microsoft 365 Business Basic",
            sku_name: "Microsoft 365 Business Basic",
        },
        annual_term_cents: 600,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0LDPB",
            sku_id: "0001",
            availability_id: "CFQ7TTC0KDCV",
            product_name: "Microsoft 365 Business Standard",
            sku_name: "Microsoft 365 Business Standard",
        },
        annual_term_cents: 1250,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0LFLX",
            sku_id: "0001",
            availability_id: "CFQ7TTC0KDJ6",
            product_name: "Microsoft 365 E3",
            sku_name: "Microsoft 365 E3",
        },
        annual_term_cents: 3600,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0LF8Q",
            sku_id: "0001",
            availability_id: "CFQ7TTC0J1GW",
            product_name: "Office 365 E1",
            sku_name: "Office 365 E1",
        },
        annual_term_cents: 1000,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0LH16",
            sku_id: "0001",
            availability_id: "CFQ7TTC0K6V8",
            product_name: "Exchange Online (Plan 1)",
            sku_name: "Exchange Online (Plan 1)",
        },
        annual_term_cents: 400,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0LH2H",
            sku_id: "0001",
            availability_id: "CFQ7TTC0NB0D",
            product_name: "Dynamics 365 Sales Professional",
            sku_name: "Dynamics 365 Sales Professional",
        },
        annual_term_cents: 6500,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0L3PB",
            sku_id: "0001",
            availability_id: "CFQ7TTC0KXG6",
            product_name: "Power BI Pro",
            sku_name: "Power BI Pro",
        },
        annual_term_cents: 1000,
        qualifiers: &[],
    },
    SeatProduct {
        ids: ProductIds {
            product_id: "CFQ7TTC0J1FV",
            sku_id: "0001",
            availability_id: "CFQ7TTC0J1G3",
            product_name: "Microsoft Teams Phone Standard",
            sku_name: "Microsoft Teams Phone Standard",
        },
        annual_term_cents: 800,
        qualifiers: &["AddOn"],
    },
];

/// A one-time product: an Azure reservation or perpetual software.
pub struct OneTimeProduct {
    /// Catalog identity.
    pub ids: ProductIds,
    /// USD price of the whole purchase, in cents (a reservation's whole term).
    pub price_cents: i64,
    /// Term in years (reservations); 0 for perpetual software.
    pub term_years: i32,
}

/// Azure reservations; index into [`METERS`] of the meter a reservation covers is [`RESERVED_METER`].
pub const RESERVATIONS: &[OneTimeProduct] = &[
    OneTimeProduct {
        ids: ProductIds {
            product_id: "DZH318Z0BQ4B",
            sku_id: "000Z",
            availability_id: "DZH318Z0DSPL",
            product_name: "Reserved VM Instance, Standard_D2s_v3, US East",
            sku_name: "Reserved VM Instance, Standard_D2s_v3, US East, 1 Year",
        },
        price_cents: 87_600,
        term_years: 1,
    },
    OneTimeProduct {
        ids: ProductIds {
            product_id: "DZH318Z0BQ4B",
            sku_id: "0010",
            availability_id: "DZH318Z0DSQ2",
            product_name: "Reserved VM Instance, Standard_D2s_v3, US East",
            sku_name: "Reserved VM Instance, Standard_D2s_v3, US East, 3 Years",
        },
        price_cents: 197_100,
        term_years: 3,
    },
];

/// Perpetual software.
pub const SOFTWARE: &[OneTimeProduct] = &[
    OneTimeProduct {
        ids: ProductIds {
            product_id: "DG7GMGF0FKZV",
            sku_id: "0002",
            availability_id: "DG7GMGF0PWJ9",
            product_name: "SQL Server 2022 Standard",
            sku_name: "SQL Server 2022 Standard - 2 Core License Pack",
        },
        price_cents: 394_500,
        term_years: 0,
    },
    OneTimeProduct {
        ids: ProductIds {
            product_id: "DG7GMGF0D65N",
            sku_id: "0001",
            availability_id: "DG7GMGF0D6GD",
            product_name: "Windows Server 2022 Datacenter",
            sku_name: "Windows Server 2022 Datacenter - 16 Core License Pack",
        },
        price_cents: 615_500,
        term_years: 0,
    },
];

/// The Azure plan product that usage is billed under.
pub const AZURE_PLAN: (&str, &str, &str) = ("DZH318Z0BPS6", "0001", "DZH318Z0BNR6");

/// An Azure meter of daily rated usage.
pub struct Meter {
    /// Meter id: a GUID, or a short code for marketplace meters (`4core`).
    pub meter_id: &'static str,
    /// Catalog product of the meter.
    pub product_id: &'static str,
    /// SKU of the meter.
    pub sku_id: &'static str,
    /// Product name.
    pub product_name: &'static str,
    /// Meter category (service).
    pub category: &'static str,
    /// Meter sub-category.
    pub sub_category: &'static str,
    /// Meter name.
    pub name: &'static str,
    /// Meter type.
    pub meter_type: &'static str,
    /// Unit of measure.
    pub unit: &'static str,
    /// Azure resource provider.
    pub consumed_service: &'static str,
    /// ARM resource type segment used to build resource URIs.
    pub resource_type: &'static str,
    /// USD list price per unit, as a decimal string.
    pub unit_price: &'static str,
    /// Whether partner earned credit (15 %) applies to the meter.
    pub pec: bool,
    /// Publisher (Microsoft or a marketplace publisher).
    pub publisher: &'static str,
}

/// Index into [`METERS`] of the VM meter that reservations cover.
pub const RESERVED_METER: usize = 0;

/// Azure meters of the world.
pub const METERS: &[Meter] = &[
    Meter {
        meter_id: "2f4c52a5-23b8-4a49-bb5d-6bc5a8bd9c0a",
        product_id: "DZH318Z0BQ4B",
        sku_id: "00TF",
        product_name: "Virtual Machines Dv3 Series",
        category: "Virtual Machines",
        sub_category: "Dv3/DSv3 Series",
        name: "D2s v3",
        meter_type: "1 Compute Hour",
        unit: "1 Hour",
        consumed_service: "Microsoft.Compute",
        resource_type: "virtualMachines",
        unit_price: "0.096",
        pec: true,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "d23a5753-ff85-4ddf-af28-8cc5cf2d3882",
        product_id: "DZH318Z0BP5C",
        sku_id: "0006",
        product_name: "Standard SSD Managed Disks",
        category: "Storage",
        sub_category: "Standard SSD Managed Disks",
        name: "E10 LRS Disk",
        meter_type: "1/Month",
        unit: "1/Month",
        consumed_service: "Microsoft.Compute",
        resource_type: "disks",
        unit_price: "9.60",
        pec: true,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "9995d93a-7d35-4d3f-9c69-7a7fea447ef4",
        product_id: "DZH318Z0BNVX",
        sku_id: "0002",
        product_name: "Bandwidth",
        category: "Bandwidth",
        sub_category: "",
        name: "Standard Data Transfer Out",
        meter_type: "1 GB",
        unit: "1 GB",
        consumed_service: "Microsoft.Network",
        resource_type: "publicIPAddresses",
        unit_price: "0.087",
        pec: true,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "cd2b5d45-2f6c-4b0a-a6b8-5a3b2e8f1c44",
        product_id: "DZH318Z0BNZ5",
        sku_id: "000G",
        product_name: "Storage",
        category: "Storage",
        sub_category: "General Block Blob v2",
        name: "Hot LRS Data Stored",
        meter_type: "1 GB/Month",
        unit: "1 GB/Month",
        consumed_service: "Microsoft.Storage",
        resource_type: "storageAccounts",
        unit_price: "0.0184",
        pec: true,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "b8d3c5e1-8f0a-4d43-9a2e-58f3b6c1d7a9",
        product_id: "DZH318Z0BQPS",
        sku_id: "00GR",
        product_name: "SQL Database Single/Elastic Pool General Purpose - Compute Gen5",
        category: "SQL Database",
        sub_category: "Single/Elastic Pool General Purpose - Compute Gen5",
        name: "vCore",
        meter_type: "1 Hour",
        unit: "1 Hour",
        consumed_service: "Microsoft.Sql",
        resource_type: "servers",
        unit_price: "0.2522",
        pec: true,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "5b2a4f86-1c3d-4e9b-8a7f-2d6c9e0b1a35",
        product_id: "DZH318Z0BP9D",
        sku_id: "0001",
        product_name: "Azure App Service Premium v3 Plan",
        category: "Azure App Service",
        sub_category: "Premium v3 Plan",
        name: "P1 v3 App",
        meter_type: "1 Hour",
        unit: "1 Hour",
        consumed_service: "Microsoft.Web",
        resource_type: "serverfarms",
        unit_price: "0.2250",
        pec: true,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "e1f7d9c3-6a4b-4c2e-b5d8-9f0a1b2c3d4e",
        product_id: "DZH318Z0BNXR",
        sku_id: "0003",
        product_name: "Log Analytics",
        category: "Log Analytics",
        sub_category: "",
        name: "Pay-as-you-go Data Ingestion",
        meter_type: "1 GB",
        unit: "1 GB",
        consumed_service: "Microsoft.OperationalInsights",
        resource_type: "workspaces",
        unit_price: "2.76",
        pec: false,
        publisher: "Microsoft",
    },
    Meter {
        meter_id: "4core",
        product_id: "DZH318Z0C1BN",
        sku_id: "0004",
        product_name: "Contoso Firewall NVA (BYOL)",
        category: "Virtual Machines Licenses",
        sub_category: "Contoso Firewall NVA",
        name: "4 vCPU VM License",
        meter_type: "1 Compute Hour",
        unit: "1 Hour",
        consumed_service: "Microsoft.Compute",
        resource_type: "virtualMachines",
        unit_price: "0.28",
        pec: false,
        publisher: "Contoso Networks",
    },
    Meter {
        meter_id: "1core",
        product_id: "DZH318Z0C1BN",
        sku_id: "0001",
        product_name: "Contoso Firewall NVA (BYOL)",
        category: "Virtual Machines Licenses",
        sub_category: "Contoso Firewall NVA",
        name: "1 vCPU VM License",
        meter_type: "1 Compute Hour",
        unit: "1 Hour",
        consumed_service: "Microsoft.Compute",
        resource_type: "virtualMachines",
        unit_price: "0.07",
        pec: false,
        publisher: "Contoso Networks",
    },
];

/// Azure regions usage happens in: (meter region, resource location).
pub const REGIONS: &[(&str, &str)] = &[
    ("US East", "eastus"),
    ("EU West", "westeurope"),
    ("UK South", "uksouth"),
    ("JA East", "japaneast"),
    ("EU North", "northeurope"),
];

/// Legacy (pre-new-commerce) licence offers: (offer GUID, durable offer GUID, name, USD cents per seat and month).
pub const LEGACY_OFFERS: &[(&str, &str, &str, i64)] = &[
    (
        "195416c1-3447-423a-b37b-ee59a99a19c4",
        "031c9e47-4802-4248-838e-778fb1d2cc05",
        "Office 365 Business Premium",
        1250,
    ),
    ("91fd106f-4b2c-4938-95ac-f54f74e9a239", "796b6b5f-613c-4e24-a17c-eba730d49c02", "Office 365 Enterprise E3", 2000),
];

/// The legacy Azure offer (MS-AZR-0145P) and the meters its usage is billed on: (service, type, resource, USD price).
pub const LEGACY_AZURE_METERS: &[(&str, &str, &str, &str)] = &[
    ("Virtual Machines", "Standard_D1 VM", "Compute Hours", "0.077"),
    ("Storage", "Standard IO - Page Blob/Disk", "Data Stored (GB)", "0.05"),
    ("Data Transfer", "Data Transfer Out (GB)", "Zone 1", "0.087"),
];

/// Company names customers draw from; some are deliberately non-ASCII.
pub const COMPANY_NAMES: &[&str] = &[
    "Contoso Ltd",
    "Müller Logistik GmbH",
    "Fabrikam, Inc.",
    "Société Générale d'Études SARL",
    "Ørsted Byg ApS",
    "株式会社サンプル商事",
    "Northwind Traders",
    "Łódź Software Sp. z o.o.",
    "Café Niño S.L.",
    "Adventure Works Cycles",
    "Zürich Präzisionstechnik AG",
    "Tailspin Toys",
    "Ålborg Fiskeri A/S",
    "Wide World Importers",
    "Proseware, Inc.",
    "Dvořák & Synové s.r.o.",
    "Litware Inc.",
    "Blue Yonder Airlines",
    "Coho Winery",
    "Fourth Coffee",
    "Margie's Travel",
    "Trey Research",
    "Woodgrove Bank",
    "Alpine Ski House",
    "Lucerne Publishing",
    "Graphic Design Institute",
    "Humongous Insurance",
    "Wingtip Toys",
    "Relecloud",
    "First Up Consultants",
];

/// Customer countries and the billing currency the world bills them in.
pub const COUNTRIES: &[(&str, crate::model::money::Currency)] = {
    use crate::model::money::Currency::*;
    &[
        ("US", Usd),
        ("DE", Eur),
        ("GB", Gbp),
        ("JP", Jpy),
        ("DK", Dkk),
        ("FR", Eur),
        ("ES", Eur),
        ("US", Usd),
        ("GB", Gbp),
        ("NL", Eur),
    ]
};
