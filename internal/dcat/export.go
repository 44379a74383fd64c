package dcat

import (
	"fmt"
	"io"
)

// Formats of the export, as Negotiate returns them.
const (
	FormatJSONLD = "jsonld"
	FormatTurtle = "turtle"
)

// WriteJSONLD writes the whole catalogue as JSON-LD: the dcat:Catalog, its
// publisher, and every dataset with its distribution, publisher node and
// the terms the hub minted for it. When only is not nil it writes that one
// dataset instead (with its distribution, publisher and minted terms, and
// no catalogue); only need not be in c.Datasets, c supplies the BaseURL.
// It returns an error wrapping ErrInvalid, before writing anything, when
// the catalogue (or only) does not validate.
func WriteJSONLD(w io.Writer, c Catalogue, only *Dataset) error {
	doc, err := build(c, only)
	if err != nil {
		return err
	}
	return writeJSONLD(w, doc)
}

// WriteTurtle writes the same graph as WriteJSONLD, as Turtle.
func WriteTurtle(w io.Writer, c Catalogue, only *Dataset) error {
	doc, err := build(c, only)
	if err != nil {
		return err
	}
	return writeTurtle(w, doc)
}

// Write writes the catalogue, or one dataset, in format (FormatJSONLD or
// FormatTurtle).
func Write(w io.Writer, c Catalogue, only *Dataset, format string) error {
	switch format {
	case FormatJSONLD:
		return WriteJSONLD(w, c, only)
	case FormatTurtle:
		return WriteTurtle(w, c, only)
	}
	return fmt.Errorf("dcat: unknown format %q: %w", format, ErrInvalid)
}

// build validates and builds the graph of the catalogue or of one dataset.
func build(c Catalogue, only *Dataset) (*document, error) {
	if only != nil {
		if err := c.validateHub(); err != nil {
			return nil, err
		}
		if err := only.Validate(); err != nil {
			return nil, err
		}
		b, err := newBuilder(c, []Dataset{*only})
		if err != nil {
			return nil, err
		}
		b.dataset(only)
		return b.doc, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	b, err := newBuilder(c, c.Datasets)
	if err != nil {
		return nil, err
	}
	b.catalogue(c.Datasets)
	for i := range c.Datasets {
		b.dataset(&c.Datasets[i])
	}
	return b.doc, nil
}

// WriteFDP writes the FAIR Data Point root metadata (FDP specification
// v1.2, fdp-o ontology) in format (FormatJSONLD or FormatTurtle): the hub
// as an fdp-o:FAIRDataPoint, with its publisher, licence, language and
// metadata dates, linking to the catalogue by fdp-o:metadataCatalog, from
// where a harvester follows dcat:dataset to every dataset.
func WriteFDP(w io.Writer, c Catalogue, format string) error {
	if format != FormatJSONLD && format != FormatTurtle {
		return fmt.Errorf("dcat: unknown format %q: %w", format, ErrInvalid)
	}
	if err := c.validateHub(); err != nil {
		return err
	}
	b, err := newBuilder(c, nil)
	if err != nil {
		return err
	}
	id := c.FDPIRI()
	r, _ := b.doc.describe(id)
	r.types(nsFDPO+"FAIRDataPoint", nsFDPO+"MetadataService", nsDCAT+"DataService", nsDCAT+"Resource")
	title := orDefault(c.Title, "Mosaic public catalogue")
	r.add(nsDCT+"title", english(title+" (FAIR Data Point)"))
	r.add(nsDCT+"description", english("FAIR Data Point of a Mosaic hub: the entry point from which "+
		"other catalogues harvest its EUCAIM DCAT-AP catalogue."))
	r.add(nsDCT+"publisher", iri(b.publisherIRI()))
	lic, _ := licenceIRI(orDefault(c.Licence, defaultLicence))
	r.add(nsDCT+"license", iri(lic))
	r.add(nsDCT+"language", iri(languageEnglish))
	r.add(nsDCT+"conformsTo", iri(fdpSpec))
	r.add(nsFDPO+"conformsToFdpSpec", iri(fdpSpec))
	r.add(nsDCAT+"endpointURL", iri(id))
	r.add(nsFDPO+"metadataIdentifier", iri(id))
	b.dates(r, nsFDPO+"metadataIssued", nsFDPO+"metadataModified", c.Issued, c.Modified)
	r.add(nsFDPO+"metadataCatalog", iri(b.catalogueIRI()))
	cat, _ := b.doc.describe(b.catalogueIRI())
	cat.types(nsDCAT + "Catalog")
	b.publisher()
	if format == FormatTurtle {
		return writeTurtle(w, b.doc)
	}
	return writeJSONLD(w, b.doc)
}
