// Command qido measures QIDO-RS study searches of a Mosaic node over a
// large index. It is a benchmark tool, not part of the mosaic binary;
// bench/qido.sh runs it on SQLite and on PostgreSQL.
//
//	qido load   -db DIR/index.db|postgres://... -dataset ID [-n 1000000] -sample FILE
//	qido query  -url http://HOST:PORT -dataset ID -token TOKEN -sample FILE [-m 2000] [-c 1]
//	qido search -db DIR/index.db|postgres://... -dataset ID -sample FILE [-m 2000] [-c 1]
//	qido createdb -server postgres://.../postgres -name NAME
//
// load fills one dataset of a node's index (through index.PutInstances,
// the path ingest takes, in batches of about -batch instances cut at
// patient boundaries, with -workers transactions in flight) with a
// synthetic hierarchy of -n instances: one patient per 100 instances
// (10,000 at a million), 1 to 3 studies each dated 2015 to 2024, 2 to 6
// series per study. A study is CT (40%), MR (25%), CR (15%), US (10%) or
// PET-CT (10%: one or two CT series, the rest PT); a series gets a number
// of instances drawn by modality (CT and PT many, MR fewer, US and CR one
// or a few), all scaled so that the total is exactly -n. Patient IDs and
// names are pseudonyms as the node's policies write them ("MOS-" and 16
// base-32 characters), UIDs are 2.25.<decimal>, blob keys are random
// 64-hex strings (no blobs are written: searches never read them). Each
// instance carries a DICOM JSON object of about 1 KB, as ingest stores.
// The dataset must exist (mosaic node dataset create). It prints progress,
// the load rate and the size of the database, and writes to -sample the
// patients, studies, dates and modalities that query and search draw
// their queries from. On PostgreSQL it ends with VACUUM ANALYZE, what
// autovacuum does on its own within minutes of a bulk load; on SQLite it
// runs nothing (the node never runs ANALYZE), unless -analyze is given.
//
// query sends -m searches to a running node's QIDO-RS endpoint
// (GET URL/dicom-web/DATASET/studies with Authorization: Bearer TOKEN and
// Accept: application/dicom+json) from -c concurrent clients, after -warmup
// searches that are not counted. The searches are an even, shuffled mix of
// these shapes:
//
//	patient        PatientID of a random existing patient
//	date           StudyDate over a random 1 to 3 month window (default limit)
//	date-l100      the same with limit=100
//	modality       ModalitiesInStudy, a random modality (default limit)
//	modality-l100  the same with limit=100
//	combined       PatientID, StudyDate around one of the patient's studies
//	               (1 to 3 months) and one of that study's modalities
//	name-prefix    PatientName=MOS-XX*, two characters of an existing name
//
// The default limit is the node's cap (1,000 unless configured). The time
// of a search runs from sending the request to having read the whole body.
// It prints, per shape and overall, the count and the 50th, 95th and 99th
// percentile and maximum latency in milliseconds, the mean number of
// results, how many responses said more results were left (Warning 299)
// and the mean size of a response body in KB. Any status but 200 stops
// the run with exit status 1.
//
// search runs the same mix in this process against index.Search, without
// HTTP or JSON, to tell the database's share of the time from the node's.
//
// createdb creates an empty database on a PostgreSQL server and prints its
// URL (the server's URL with the database name replaced).
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mosaic-imaging/mosaic/internal/cohort"
	"github.com/mosaic-imaging/mosaic/internal/index"
	"github.com/mosaic-imaging/mosaic/internal/sqldb"
)

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "load":
		err = load(os.Args[2:])
	case "query":
		err = query(os.Args[2:])
	case "search":
		err = search(os.Args[2:])
	case "createdb":
		err = createDB(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "qido:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: qido load|query|search|createdb [flags] (qido MODE -h lists the flags)")
	os.Exit(2)
}

// Sample is what load writes for query and search: every patient with
// its studies.
type Sample struct {
	Dataset   string          `json:"dataset"`
	Instances int             `json:"instances"`
	Patients  []SamplePatient `json:"patients"`
}

// SamplePatient is one patient of the synthetic index.
type SamplePatient struct {
	ID      string        `json:"id"`
	Name    string        `json:"name"`
	Studies []SampleStudy `json:"studies"`
}

// SampleStudy is one study: its date and modalities.
type SampleStudy struct {
	UID        string   `json:"uid"`
	Date       string   `json:"date"`
	Modalities []string `json:"modalities"`
}

// The synthetic hierarchy, built whole before any instance is written so
// that the instance counts can be scaled to the total asked for.
type patient struct {
	id, name, birth, sex string
	birthYear            int
	studies              []*study
}

type study struct {
	uid, date, time, accession, description, bodyPart string
	kind                                              string // CT, MR, CR, US or PET
	series                                            []*series
}

type series struct {
	uid, modality, description, manufacturer, model string
	number                                          int
	weight                                          float64
	instances                                       int
}

var (
	firstDay = time.Date(2015, 1, 1, 0, 0, 0, 0, time.UTC)
	lastDay  = time.Date(2024, 12, 31, 0, 0, 0, 0, time.UTC)
	days     = int(lastDay.Sub(firstDay).Hours()/24) + 1
)

func pick[T any](r *mrand.Rand, v []T) T { return v[r.IntN(len(v))] }

// weighted picks an index with probability proportional to w.
func weighted(r *mrand.Rand, w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	x := r.Float64() * sum
	for i, v := range w {
		if x < v {
			return i
		}
		x -= v
	}
	return len(w) - 1
}

var (
	studyKinds   = []string{"CT", "MR", "CR", "US", "PET"}
	studyKindW   = []float64{40, 25, 15, 10, 10}
	bodyParts    = map[string][]string{"CT": {"CHEST", "ABDOMEN", "HEAD", "PELVIS", "NECK"}, "MR": {"BRAIN", "BREAST", "PROSTATE", "LIVER", "SPINE", "KNEE"}, "CR": {"CHEST", "HAND", "KNEE", "SPINE"}, "US": {"ABDOMEN", "BREAST", "THYROID", "LIVER"}, "PET": {"WHOLEBODY"}}
	manufacturer = map[string][][2]string{
		"CT": {{"SIEMENS", "SOMATOM Force"}, {"GE MEDICAL SYSTEMS", "Revolution CT"}, {"Philips", "IQon Spectral CT"}, {"CANON_MEC", "Aquilion ONE"}},
		"MR": {{"SIEMENS", "MAGNETOM Vida"}, {"GE MEDICAL SYSTEMS", "SIGNA Premier"}, {"Philips", "Ingenia Elition X"}},
		"PT": {{"SIEMENS", "Biograph Vision 600"}, {"GE MEDICAL SYSTEMS", "Discovery MI"}},
		"CR": {{"FUJIFILM Corporation", "FCR PROFECT CS"}, {"Carestream Health", "DRX-Evolution"}},
		"US": {{"GE Healthcare", "LOGIQ E10"}, {"Philips", "EPIQ 7G"}},
	}
	seriesDescriptions = map[string][]string{
		"CT": {"Axial 1.25mm", "Axial 5mm", "Coronal MPR 3mm", "Sagittal MPR 3mm", "Lung 1mm", "Soft tissue 2mm", "Topogram"},
		"MR": {"T1 SAG", "T2 AX", "FLAIR AX", "DWI b1000", "ADC", "T1 POST GD AX", "DCE", "T2 FS COR"},
		"PT": {"PET WB AC", "PET WB NAC", "PET MIP"},
		"CR": {"PA", "LAT", "AP", "OBLIQUE"},
		"US": {"B-mode", "Doppler", "Elastography"},
	}
	sopClass = map[string]string{
		"CT": "1.2.840.10008.5.1.4.1.1.2", "MR": "1.2.840.10008.5.1.4.1.1.4", "PT": "1.2.840.10008.5.1.4.1.1.128",
		"CR": "1.2.840.10008.5.1.4.1.1.1", "US": "1.2.840.10008.5.1.4.1.1.6.1",
	}
	// matrix is rows, columns, bits allocated and samples per pixel.
	matrix = map[string][4]int{"CT": {512, 512, 16, 1}, "MR": {320, 320, 16, 1}, "PT": {200, 200, 16, 1}, "CR": {2500, 2048, 16, 1}, "US": {600, 800, 8, 3}}
)

// seriesWeight is a series' relative number of instances by modality,
// before scaling to the total.
func seriesWeight(r *mrand.Rand, modality string) float64 {
	switch modality {
	case "CT":
		return 60 + 240*r.Float64()
	case "MR":
		return 20 + 180*r.Float64()
	case "PT":
		return 100 + 200*r.Float64()
	case "US":
		return 1 + 19*r.Float64()
	default: // CR
		return 1 + r.Float64()
	}
}

// build makes the hierarchy of n instances.
func build(r *mrand.Rand, n int) []*patient {
	np := max(1, (n+50)/100)
	pats := make([]*patient, np)
	var allSeries []*series
	for i := range pats {
		p := &patient{id: cohort.Pseudonym(r), name: cohort.Pseudonym(r), sex: pick(r, []string{"F", "M"}), birthYear: 1930 + r.IntN(75)}
		p.birth = fmt.Sprintf("%d0101", p.birthYear)
		ns := 1 + weighted(r, []float64{45, 35, 20})
		var dates []int
		for range ns {
			dates = append(dates, r.IntN(days))
		}
		slices.Sort(dates)
		for _, d := range dates {
			day := firstDay.AddDate(0, 0, d)
			st := &study{uid: cohort.UID(r), date: day.Format("20060102"),
				time:      fmt.Sprintf("%02d%02d%02d", 7+r.IntN(12), r.IntN(60), r.IntN(60)),
				accession: cohort.Pseudonym(r)[4:], kind: studyKinds[weighted(r, studyKindW)]}
			st.bodyPart = pick(r, bodyParts[st.kind])
			st.description = map[string]string{"CT": "CT " + st.bodyPart + " WITH CONTRAST", "MR": "MR " + st.bodyPart + " WO/W CONTRAST",
				"CR": "XR " + st.bodyPart + " 2 VIEWS", "US": "US " + st.bodyPart, "PET": "PET-CT FDG WHOLE BODY"}[st.kind]
			nse := 2 + r.IntN(5)
			for k := range nse {
				m := st.kind
				if m == "PET" {
					m = "PT"
					if k == 0 || (k == 1 && nse > 3) {
						m = "CT"
					}
				}
				mf := pick(r, manufacturer[m])
				se := &series{uid: cohort.UID(r), modality: m, number: k + 1, description: pick(r, seriesDescriptions[m]),
					manufacturer: mf[0], model: mf[1], weight: seriesWeight(r, m)}
				st.series = append(st.series, se)
				allSeries = append(allSeries, se)
			}
			p.studies = append(p.studies, st)
		}
		pats[i] = p
	}
	// Scale the weights so that the counts add up to n, with at least one
	// instance per series; the remainder goes to the largest series.
	var sum float64
	for _, se := range allSeries {
		sum += se.weight
	}
	f := float64(n) / sum
	total := 0
	var largest *series
	for _, se := range allSeries {
		se.instances = max(1, int(math.Round(se.weight*f)))
		total += se.instances
		if largest == nil || se.instances > largest.instances {
			largest = se
		}
	}
	for total != n {
		// Too few: add to the largest. Too many: take from the largest
		// series until the total is right (only when n is tiny can this
		// reach series of one instance; then the sample has more).
		switch {
		case total < n:
			largest.instances += n - total
			total = n
		default:
			cut := min(total-n, largest.instances-1)
			if cut == 0 {
				return pats
			}
			largest.instances -= cut
			total -= cut
			for _, se := range allSeries {
				if se.instances > largest.instances {
					largest = se
				}
			}
		}
	}
	return pats
}

// studyModalities lists a study's distinct modalities, sorted.
func studyModalities(st *study) []string {
	var out []string
	for _, se := range st.series {
		if !slices.Contains(out, se.modality) {
			out = append(out, se.modality)
		}
	}
	slices.Sort(out)
	return out
}

// instances makes the index rows of one patient.
func instances(r *mrand.Rand, dataset string, p *patient) []index.Instance {
	var out []index.Instance
	var key [32]byte
	for _, st := range p.studies {
		year, _ := strconv.Atoi(st.date[:4])
		age := fmt.Sprintf("%03dY", max(0, year-p.birthYear))
		for _, se := range st.series {
			mx := matrix[se.modality]
			pixels := int64(mx[0]) * int64(mx[1]) * int64(mx[2]/8) * int64(mx[3])
			number := se.number
			for k := range se.instances {
				for i := 0; i < len(key); i += 8 {
					binary.LittleEndian.PutUint64(key[i:], r.Uint64())
				}
				in := index.Instance{
					Dataset: dataset, PatientID: p.id, PatientName: p.name, PatientBirthDate: p.birth, PatientSex: p.sex,
					StudyUID: st.uid, StudyDate: st.date, StudyTime: st.time, AccessionNumber: st.accession, StudyID: "1",
					StudyDescription: st.description, PatientAge: age,
					SeriesUID: se.uid, Modality: se.modality, SeriesNumber: &number, SeriesDescription: se.description,
					BodyPart: st.bodyPart, Manufacturer: se.manufacturer, ModelName: se.model, SeriesDate: st.date,
					PPSStartDate: st.date, PPSStartTime: st.time,
					SOPUID: cohort.UID(r), SOPClassUID: sopClass[se.modality], TransferSyntax: "1.2.840.10008.1.2.1",
					Rows: mx[0], Columns: mx[1], Frames: 1, BitsAllocated: mx[2], SamplesPerPixel: mx[3],
					BlobKey: hex.EncodeToString(key[:]), PixelOffset: 1400 + int64(r.IntN(400)), PixelLength: pixels,
				}
				n := k + 1
				in.InstanceNumber = &n
				in.Size = in.PixelOffset + pixels
				in.Meta = metaJSON(r, &in, k)
				out = append(out, in)
			}
		}
	}
	return out
}

// metaJSON is an instance's DICOM JSON object (PS3.18 F.2) as ingest
// stores it: the header attributes a de-identified image keeps, pixel
// data as a bulk data URI; about 1 KB.
func metaJSON(r *mrand.Rand, in *index.Instance, k int) []byte {
	b := make([]byte, 0, 1400)
	first := true
	attr := func(tag, vr string, vals ...any) {
		if first {
			b = append(b, '{')
			first = false
		} else {
			b = append(b, ',')
		}
		b = append(b, '"')
		b = append(b, tag...)
		b = append(b, `":{"vr":"`...)
		b = append(b, vr...)
		b = append(b, '"')
		if len(vals) > 0 {
			b = append(b, `,"Value":`...)
			if vr == "PN" {
				vals = []any{map[string]string{"Alphabetic": vals[0].(string)}}
			}
			v, _ := json.Marshal(vals)
			b = append(b, v...)
		}
		b = append(b, '}')
	}
	thick := map[string]float64{"CT": 1.25, "MR": 3, "PT": 3.27}[in.Modality]
	spacing := map[string]float64{"CT": 0.7, "MR": 0.9, "PT": 4.07, "CR": 0.139, "US": 0.2}[in.Modality]
	attr("00080008", "CS", "ORIGINAL", "PRIMARY")
	attr("00080016", "UI", in.SOPClassUID)
	attr("00080018", "UI", in.SOPUID)
	attr("00080020", "DA", in.StudyDate)
	attr("00080030", "TM", in.StudyTime)
	attr("00080050", "SH", in.AccessionNumber)
	attr("00080060", "CS", in.Modality)
	attr("00080070", "LO", in.Manufacturer)
	attr("00081030", "LO", in.StudyDescription)
	attr("0008103E", "LO", in.SeriesDescription)
	attr("00100010", "PN", in.PatientName)
	attr("00100020", "LO", in.PatientID)
	attr("00100030", "DA", in.PatientBirthDate)
	attr("00100040", "CS", in.PatientSex)
	attr("00120062", "CS", "YES")
	attr("00180015", "CS", in.BodyPart)
	attr("0020000D", "UI", in.StudyUID)
	attr("0020000E", "UI", in.SeriesUID)
	attr("00200011", "IS", *in.SeriesNumber)
	attr("00200013", "IS", *in.InstanceNumber)
	if thick > 0 {
		round := func(x float64) float64 { return math.Round(x*100) / 100 }
		attr("00200032", "DS", round(-180+r.Float64()*10), round(-200+r.Float64()*10), round(float64(-k)*thick))
	}
	attr("00280010", "US", in.Rows)
	attr("00280011", "US", in.Columns)
	attr("00280030", "DS", spacing, spacing)
	attr("00280100", "US", in.BitsAllocated)
	b = append(b, `,"7FE00010":{"vr":"OW","BulkDataURI":"mosaic-root:studies/`...)
	b = append(b, in.StudyUID...)
	b = append(b, "/series/"...)
	b = append(b, in.SeriesUID...)
	b = append(b, "/instances/"...)
	b = append(b, in.SOPUID...)
	b = append(b, `/bulk/7FE00010"}}`...)
	return b
}

func load(args []string) error {
	fs := flag.NewFlagSet("load", flag.ExitOnError)
	dsn := fs.String("db", "", "index database: DIR/index.db of a node's data directory, or a postgres:// URL (required)")
	dataset := fs.String("dataset", "bench", "dataset to fill (it must exist)")
	n := fs.Int("n", 1000000, "instances to index")
	batch := fs.Int("batch", 2000, "instances per transaction, about (batches end at a patient's last instance)")
	workers := fs.Int("workers", 0, "transactions in flight (default 1 on SQLite, 4 on PostgreSQL)")
	seed := fs.Uint64("seed", 1, "random seed")
	samplePath := fs.String("sample", "", "file to write the patients and studies to, for query and search (required)")
	analyze := fs.Bool("analyze", false, "on SQLite, run ANALYZE after loading (the node does not)")
	fs.Parse(args)
	if *dsn == "" || *samplePath == "" || *n < 1 {
		return errors.New("load: -db and -sample are required, -n must be positive")
	}
	ctx := context.Background()
	st, err := index.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Dataset(ctx, *dataset); err != nil {
		return fmt.Errorf("dataset %s: %w (create it with mosaic node dataset create)", *dataset, err)
	}
	pg := st.DB().Dialect == sqldb.Postgres
	if *workers <= 0 {
		*workers = 1
		if pg {
			*workers = 4
		}
	}

	r := mrand.New(mrand.NewPCG(*seed, 0x6d6f73616963))
	t0 := time.Now()
	pats := build(r, *n)
	sample := Sample{Dataset: *dataset, Instances: *n}
	nst, nse := 0, 0
	mods := map[string]int{}
	for _, p := range pats {
		sp := SamplePatient{ID: p.id, Name: p.name}
		for _, s := range p.studies {
			sp.Studies = append(sp.Studies, SampleStudy{UID: s.uid, Date: s.date, Modalities: studyModalities(s)})
			nst++
			nse += len(s.series)
			for _, se := range s.series {
				mods[se.modality] += se.instances
			}
		}
		sample.Patients = append(sample.Patients, sp)
	}
	if err := writeJSON(*samplePath, sample); err != nil {
		return err
	}
	fmt.Printf("hierarchy: %d patients, %d studies, %d series, %d instances (", len(pats), nst, nse, *n)
	for i, m := range []string{"CT", "MR", "PT", "US", "CR"} {
		if i > 0 {
			fmt.Print(", ")
		}
		fmt.Printf("%s %.1f%%", m, 100*float64(mods[m])/float64(*n))
	}
	fmt.Printf("); %s, %d transactions in flight, batches of about %d\n", st.DB().Where, *workers, *batch)

	// One producer makes the rows patient by patient, with a random
	// stream of its own so that the rows do not depend on the workers.
	batches := make(chan []index.Instance, 2*(*workers))
	go func() {
		defer close(batches)
		var cur []index.Instance
		for i, p := range pats {
			pr := mrand.New(mrand.NewPCG(*seed, uint64(i)+1))
			cur = append(cur, instances(pr, *dataset, p)...)
			if len(cur) >= *batch {
				batches <- cur
				cur = nil
			}
		}
		if len(cur) > 0 {
			batches <- cur
		}
	}()
	var done, stored atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		tick := time.NewTicker(10 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				d := done.Load()
				el := time.Since(t0).Seconds()
				fmt.Printf("  %d of %d instances (%.0f%%), %.0f instances/s, %.0f s\n", d, *n, 100*float64(d)/float64(*n), float64(d)/el, el)
			}
		}
	}()
	for range *workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range batches {
				res, err := st.PutInstances(ctx, b)
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					for range batches { // drain, so the producer ends
					}
					return
				}
				for _, s := range res {
					if s == index.Stored {
						stored.Add(1)
					}
				}
				done.Add(int64(len(b)))
			}
		}()
	}
	wg.Wait()
	close(stop)
	if firstErr != nil {
		return firstErr
	}
	el := time.Since(t0)
	fmt.Printf("loaded %d instances (%d new) in %.1f s: %.0f instances/s\n", done.Load(), stored.Load(), el.Seconds(), float64(done.Load())/el.Seconds())
	switch {
	case pg:
		t1 := time.Now()
		if _, err := st.DB().Exec(ctx, "VACUUM ANALYZE"); err != nil {
			return err
		}
		fmt.Printf("VACUUM ANALYZE in %.1f s\n", time.Since(t1).Seconds())
	case *analyze:
		t1 := time.Now()
		if _, err := st.DB().Exec(ctx, "ANALYZE"); err != nil {
			return err
		}
		fmt.Printf("ANALYZE in %.1f s\n", time.Since(t1).Seconds())
	}
	c, err := st.DatasetCounts(ctx, *dataset)
	if err != nil {
		return err
	}
	fmt.Printf("dataset %s: %d patients, %d studies, %d series, %d instances\n", *dataset, c.Patients, c.Studies, c.Series, c.Instances)
	size, err := dbSize(ctx, st.DB(), *dsn)
	if err != nil {
		return err
	}
	fmt.Printf("database size: %.0f MB\n", float64(size)/1e6)
	return nil
}

// dbSize is the size of the database: its files on SQLite (after a
// checkpoint of the write-ahead log), the whole database on PostgreSQL.
func dbSize(ctx context.Context, db *sqldb.DB, dsn string) (int64, error) {
	if db.Dialect == sqldb.Postgres {
		var n int64
		err := db.QueryRow(ctx, "SELECT pg_database_size(current_database())").Scan(&n)
		return n, err
	}
	if _, err := db.Exec(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
		return 0, err
	}
	path := strings.TrimPrefix(strings.TrimPrefix(dsn, "sqlite:"), "file:")
	var n int64
	for _, suffix := range []string{"", "-wal", "-shm"} {
		if fi, err := os.Stat(path + suffix); err == nil {
			n += fi.Size()
		}
	}
	return n, nil
}

func writeJSON(path string, v any) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// A search of the mix: its shape, its QIDO-RS query parameters and the
// same as an index search.
type searchSpec struct {
	shape  string
	params url.Values
	limit  int // 0: the node's default
	match  []index.Filter
}

var shapes = []string{"patient", "date", "date-l100", "modality", "modality-l100", "combined", "name-prefix"}

var allModalities = []string{"CT", "MR", "PT", "US", "CR"}

// window is a date range of 1 to 3 months starting at day, as QIDO-RS
// writes it and as the index matches it.
func window(day time.Time, months int) (string, string) {
	return day.Format("20060102"), day.AddDate(0, months, -1).Format("20060102")
}

// mix makes m searches, an even share of each shape, shuffled.
func mix(r *mrand.Rand, s *Sample, m int) []searchSpec {
	out := make([]searchSpec, 0, m)
	for i := range m {
		q := searchSpec{shape: shapes[i%len(shapes)], params: url.Values{}}
		p := s.Patients[r.IntN(len(s.Patients))]
		dateRange := func(lo, hi string) {
			q.params.Set("StudyDate", lo+"-"+hi)
			q.match = append(q.match, index.Filter{Tag: 0x00080020, Kind: index.MatchRange, Min: lo, Max: hi})
		}
		modality := func(m string) {
			q.params.Set("ModalitiesInStudy", m)
			q.match = append(q.match, index.Filter{Tag: 0x00080061, Kind: index.MatchExact, Value: m})
		}
		patientID := func() {
			q.params.Set("PatientID", p.ID)
			q.match = append(q.match, index.Filter{Tag: 0x00100020, Kind: index.MatchExact, Value: p.ID})
		}
		switch q.shape {
		case "patient":
			patientID()
		case "date", "date-l100":
			months := 1 + r.IntN(3)
			start := firstDay.AddDate(0, 0, r.IntN(days-92))
			dateRange(window(start, months))
		case "modality", "modality-l100":
			modality(pick(r, allModalities))
		case "combined":
			st := pick(r, p.Studies)
			months := 1 + r.IntN(3)
			day, _ := time.Parse("20060102", st.Date)
			span := int(day.AddDate(0, months, 0).Sub(day).Hours() / 24)
			patientID()
			dateRange(window(day.AddDate(0, 0, -r.IntN(span)), months))
			modality(pick(r, st.Modalities))
		case "name-prefix":
			prefix := p.Name[:6]
			q.params.Set("PatientName", prefix+"*")
			q.match = append(q.match, index.Filter{Tag: 0x00100010, Kind: index.MatchWildcard, Pattern: prefix + "%"})
		}
		if strings.HasSuffix(q.shape, "-l100") {
			q.limit = 100
			q.params.Set("limit", "100")
		}
		out = append(out, q)
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// result is one timed search.
type result struct {
	shape   string
	d       time.Duration
	results int
	bytes   int // of the response body (query only)
	more    bool
}

// runMix runs the searches with c workers, warm-up first, and returns the
// timed results and the wall time of the timed part.
func runMix(warm, timed []searchSpec, c int, do func(searchSpec) (result, error)) ([]result, time.Duration, error) {
	run := func(qs []searchSpec) ([]result, error) {
		out := make([]result, len(qs))
		var next atomic.Int64
		var wg sync.WaitGroup
		var once sync.Once
		var firstErr error
		var failed atomic.Bool
		for range c {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !failed.Load() {
					i := int(next.Add(1)) - 1
					if i >= len(qs) {
						return
					}
					res, err := do(qs[i])
					if err != nil {
						once.Do(func() { firstErr = err })
						failed.Store(true)
						return
					}
					out[i] = res
				}
			}()
		}
		wg.Wait()
		return out, firstErr
	}
	if _, err := run(warm); err != nil {
		return nil, 0, err
	}
	t0 := time.Now()
	out, err := run(timed)
	return out, time.Since(t0), err
}

// mixFlags are the flags query and search share.
type mixFlags struct {
	samplePath   string
	m, c, warmup int
	seed         uint64
}

func (f *mixFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.samplePath, "sample", "", "the file load wrote (required)")
	fs.IntVar(&f.m, "m", 2000, "searches timed")
	fs.IntVar(&f.c, "c", 1, "concurrent clients")
	fs.IntVar(&f.warmup, "warmup", 100, "searches run first and not timed")
	fs.Uint64Var(&f.seed, "seed", 2, "random seed of the mix")
}

func (f *mixFlags) searches() (*Sample, []searchSpec, []searchSpec, error) {
	if f.samplePath == "" || f.m < 1 || f.c < 1 {
		return nil, nil, nil, errors.New("-sample is required; -m and -c must be positive")
	}
	b, err := os.ReadFile(f.samplePath)
	if err != nil {
		return nil, nil, nil, err
	}
	var s Sample
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, nil, nil, fmt.Errorf("%s: %w", f.samplePath, err)
	}
	if len(s.Patients) == 0 {
		return nil, nil, nil, fmt.Errorf("%s: no patients", f.samplePath)
	}
	r := mrand.New(mrand.NewPCG(f.seed, 0x7169646f))
	warm := mix(r, &s, f.warmup)
	return &s, warm, mix(r, &s, f.m), nil
}

func query(args []string) error {
	fs := flag.NewFlagSet("query", flag.ExitOnError)
	var mf mixFlags
	mf.register(fs)
	base := fs.String("url", "", "the node's base URL, e.g. http://127.0.0.1:8180 (required)")
	token := fs.String("token", "", "node token, read scope at least (default: env MOSAIC_TOKEN)")
	dataset := fs.String("dataset", "", "dataset (default: the sample's)")
	fs.Parse(args)
	s, warm, timed, err := mf.searches()
	if err != nil {
		return err
	}
	if *base == "" {
		return errors.New("query: -url is required")
	}
	if *token == "" {
		*token = os.Getenv("MOSAIC_TOKEN")
	}
	if *dataset == "" {
		*dataset = s.Dataset
	}
	endpoint := strings.TrimSuffix(*base, "/") + "/dicom-web/" + url.PathEscape(*dataset) + "/studies"
	client := &http.Client{Timeout: 60 * time.Second, Transport: &http.Transport{
		MaxIdleConnsPerHost: mf.c, DisableCompression: true,
	}}
	do := func(q searchSpec) (result, error) {
		req, err := http.NewRequest("GET", endpoint+"?"+q.params.Encode(), nil)
		if err != nil {
			return result{}, err
		}
		req.Header.Set("Accept", "application/dicom+json")
		if *token != "" {
			req.Header.Set("Authorization", "Bearer "+*token)
		}
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return result{}, err
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		d := time.Since(t0)
		if err != nil {
			return result{}, err
		}
		if resp.StatusCode != http.StatusOK {
			return result{}, fmt.Errorf("GET %s?%s: %s: %.300s", endpoint, q.params.Encode(), resp.Status, body)
		}
		n, err := countItems(body)
		if err != nil {
			return result{}, fmt.Errorf("GET %s?%s: body: %w", endpoint, q.params.Encode(), err)
		}
		more := false
		for _, w := range resp.Header.Values("Warning") {
			// The node's wording: "There are more matches than this
			// response holds".
			w = strings.ToLower(w)
			more = more || strings.Contains(w, "more matches") || strings.Contains(w, "more results")
		}
		return result{shape: q.shape, d: d, results: n, bytes: len(body), more: more}, nil
	}
	fmt.Printf("QIDO-RS GET %s, %d searches (%d warm-up first, not timed), %d client(s), %d CPUs\n", endpoint, len(timed), len(warm), mf.c, runtime.NumCPU())
	res, wall, err := runMix(warm, timed, mf.c, do)
	if err != nil {
		return err
	}
	report(res, wall)
	return nil
}

func search(args []string) error {
	fs := flag.NewFlagSet("search", flag.ExitOnError)
	var mf mixFlags
	mf.register(fs)
	dsn := fs.String("db", "", "index database, as for load (required)")
	maxLimit := fs.Int("max-limit", 1000, "the node's cap on results, the default limit")
	fs.Parse(args)
	s, warm, timed, err := mf.searches()
	if err != nil {
		return err
	}
	if *dsn == "" {
		return errors.New("search: -db is required")
	}
	ctx := context.Background()
	st, err := index.Open(ctx, *dsn)
	if err != nil {
		return err
	}
	defer st.Close()
	do := func(q searchSpec) (result, error) {
		// As the node asks: one more than the cap when no limit is given,
		// to know whether more are left.
		limit := q.limit
		if limit == 0 {
			limit = *maxLimit + 1
		}
		t0 := time.Now()
		// NoMeta as the node sets it: the mix asks for no includefield.
		hits, err := st.Search(ctx, index.Search{Dataset: s.Dataset, Level: index.StudyLevel, Filters: q.match, Limit: limit, NoMeta: true})
		d := time.Since(t0)
		if err != nil {
			return result{}, fmt.Errorf("%s %v: %w", q.shape, q.params, err)
		}
		n := len(hits)
		more := q.limit == 0 && n > *maxLimit
		if more {
			n = *maxLimit
		}
		return result{shape: q.shape, d: d, results: n, more: more}, nil
	}
	fmt.Printf("index.Search on %s, %d searches (%d warm-up first, not timed), %d client(s), %d CPUs\n", st.DB().Where, len(timed), len(warm), mf.c, runtime.NumCPU())
	res, wall, err := runMix(warm, timed, mf.c, do)
	if err != nil {
		return err
	}
	report(res, wall)
	return nil
}

// countItems counts the objects of a JSON array (the results of a
// search) without decoding them.
func countItems(b []byte) (int, error) {
	depth, n := 0, 0
	inStr, esc := false, false
	for _, c := range b {
		switch {
		case inStr:
			switch {
			case esc:
				esc = false
			case c == '\\':
				esc = true
			case c == '"':
				inStr = false
			}
		case c == '"':
			inStr = true
		case c == '[' || c == '{':
			if depth == 1 && c == '{' {
				n++
			}
			depth++
		case c == ']' || c == '}':
			depth--
		}
	}
	if depth != 0 || inStr {
		return 0, errors.New("not a complete JSON array")
	}
	return n, nil
}

func report(res []result, wall time.Duration) {
	byShape := map[string][]result{}
	for _, r := range res {
		byShape[r.shape] = append(byShape[r.shape], r)
	}
	fmt.Printf("%-14s %7s %8s %8s %8s %8s %9s %6s %8s\n", "shape", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "results", "more", "KB")
	line := func(name string, rs []result) {
		if len(rs) == 0 {
			return
		}
		ds := make([]time.Duration, len(rs))
		var sum, more, bytes int
		for i, r := range rs {
			ds[i] = r.d
			sum += r.results
			bytes += r.bytes
			if r.more {
				more++
			}
		}
		slices.Sort(ds)
		ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
		kb := "-" // search reads no response
		if bytes > 0 {
			kb = fmt.Sprintf("%.1f", float64(bytes)/float64(len(rs))/1000)
		}
		fmt.Printf("%-14s %7d %8.2f %8.2f %8.2f %8.2f %9.1f %6d %8s\n", name, len(rs),
			ms(percentile(ds, 50)), ms(percentile(ds, 95)), ms(percentile(ds, 99)), ms(ds[len(ds)-1]), float64(sum)/float64(len(rs)), more, kb)
	}
	for _, s := range shapes {
		line(s, byShape[s])
	}
	line("all", res)
	fmt.Printf("wall time %.1f s, %.0f searches/s\n", wall.Seconds(), float64(len(res))/wall.Seconds())
}

// percentile is the nearest-rank percentile of sorted durations.
func percentile(ds []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p/100*float64(len(ds)))) - 1
	return ds[min(max(i, 0), len(ds)-1)]
}

func createDB(args []string) error {
	fs := flag.NewFlagSet("createdb", flag.ExitOnError)
	server := fs.String("server", os.Getenv("MOSAIC_TEST_POSTGRES"), "postgres:// URL of a superuser connection (default: env MOSAIC_TEST_POSTGRES)")
	name := fs.String("name", "", "database name (default: mosaic_qido_ and random hex)")
	fs.Parse(args)
	u, err := url.Parse(*server)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == "" {
		return errors.New("createdb: -server must be a postgres://HOST/DATABASE URL")
	}
	if *name == "" {
		var b [6]byte
		rand.Read(b[:])
		*name = "mosaic_qido_" + hex.EncodeToString(b[:])
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, *server)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{*name}.Sanitize()); err != nil {
		return err
	}
	db := *u
	db.Path = "/" + *name
	db.RawPath = ""
	fmt.Println(db.String())
	return nil
}
