// Package dcat exports the hub's public catalogue, the dataset descriptions
// that nodes publish (Tier 1), as EUCAIM DCAT-AP v2 metadata in JSON-LD and
// Turtle, and describes the hub as a FAIR Data Point so that other
// catalogues (the EUCAIM public catalogue, HealthData@EU, national
// catalogues) can harvest it.
//
// # Profile
//
// The target is the EUCAIM DCAT Application Profile v2.0 (EUCAIM/eucaim_dcat_ap,
// releases/v2.0/Dataset.md, Catalogue.md and Distribution.md), which builds
// on HealthDCAT-AP Release 7 and DCAT-AP 3. Every property the profile marks
// Mandatory for a dcat:Dataset is written for every dataset
// (MandatoryDatasetProperties), and so are the mandatory properties of the
// dcat:Catalog (MandatoryCatalogueProperties), of the dcat:Distribution
// (MandatoryDistributionProperties), and of the publisher agent and contact
// points they require. Vocabularies:
//
//   - access rights: the EU access-right authority table (PUBLIC, RESTRICTED,
//     NON_PUBLIC);
//   - theme: the EU data theme HEAL; health category: EHRS (EHDS Article
//     51(1)(a): medical images are part of the electronic health record);
//     health theme: CANCER_DISEASE; both from the HealthDCAT-AP vocabularies
//     at the addresses the EUCAIM profile cites;
//   - applicable legislation: the ELI of the EHDS Regulation (EU) 2025/327,
//     on the dataset, the distribution and the catalogue;
//   - dataset type: dpv:PseudonymisedData, because every node pseudonymises
//     with keyed hashes at its door;
//   - distribution rights: the EUCAIM access conditions (DOWNLOAD,
//     IN_SITU_PROCESSING, REMOTE_PROCESSING);
//   - birth sex, cancer condition, image modality, body part and equipment
//     manufacturer: the EUCAIM hyperontology concepts where Mosaic knows the
//     concept (see the tables in profile.go and where they come from);
//     otherwise a standard IRI where one exists (DICOM DCM codes for
//     modalities, SNOMED CT for conditions), otherwise a term minted under
//     the hub's BaseURL (below /vocab/) that the document itself declares a
//     subclass of the EUCAIM class the profile asks for, with the original
//     code as skos:notation, so that a harvester can map it later.
//
// Dates are xsd:dateTime in UTC; counts and ages are xsd:nonNegativeInteger;
// titles, descriptions, keywords and provenance are tagged "en". Typical
// ages are widened to multiples of five years, as the profile wants them
// approximate.
//
// # Placeholders
//
// A node's description may lack values the profile makes mandatory. Rather
// than leave a mandatory property out, the export fills it as follows:
//
//   - title: the dataset ID; description: a sentence generated from the
//     counts, modalities and body parts; keywords: the condition labels,
//     modalities and body parts (or "cancer imaging");
//   - version: the modification date as a calendar version (2026.03.05),
//     or "1.0.0" when there is none;
//   - interoperability tier: Tier 1 when Tier is 0; the tiers are minted
//     terms (/vocab/interoperability-level/tier-N) until Mosaic has the
//     EUCAIM concept IRIs of the subclasses of eucaim:SPEC1000008;
//   - contact point: the node (its title, and its PublisherURL or the hub's
//     page of the node) when the dataset has no contact; the publisher's
//     contact page is the node's PublisherURL or the hub's page of the node;
//   - access rights: NON_PUBLIC when empty (nothing row-level leaves a node
//     without a permit); distribution access condition: REMOTE_PROCESSING
//     when none is given;
//   - birth sex: the EUCAIM concept "unknown" when no sex is given;
//   - cancer condition, image modality, body part, manufacturer: a minted
//     term ending in /not-reported, labelled as a Mosaic placeholder;
//   - collection method: always the minted placeholder
//     /vocab/collection-method/not-reported, since nodes do not report it;
//   - provenance: a statement that the node described the dataset from its
//     own index after de-identification at the door;
//   - structured data: false (no CSVW description of variables is published
//     yet), which the profile allows without healthdcatap:hasVariables.
//
// The Health Data Access Body (healthdcatap:hdab) is mandatory in
// HealthDCAT-AP, but the EUCAIM profile forbids a placeholder organisation
// and lets it stay empty while the EHDS bodies are being designated: it is
// written only when the dataset names one (Dataset.HDAB), and it is listed
// in TransitionalDatasetProperties rather than MandatoryDatasetProperties.
//
// # Addresses
//
// Every IRI is built from Catalogue.BaseURL: the catalogue is
// BaseURL/catalogue, a dataset BaseURL/datasets/<node>/<dataset> (each part
// of the ID percent-encoded as one path segment), its distribution that IRI
// plus /distribution, a node's agent BaseURL/nodes/<node>, the hub's agent
// BaseURL/publisher and the FAIR Data Point BaseURL/fdp. The hub's HTTP layer
// serves these paths, picking the format with Negotiate.
//
// Both serialisations are written from one in-memory graph, so they always
// carry the same triples. The Turtle and the JSON-LD are written by hand
// (no RDF library): IRIs are checked and percent-encoded where needed,
// literals escaped, and non-ASCII text kept as UTF-8. Invalid UTF-8 in the
// input becomes U+FFFD.
package dcat
