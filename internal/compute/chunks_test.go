package compute

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/mosaic-imaging/mosaic/internal/fed"
	"github.com/mosaic-imaging/mosaic/internal/fl"
)

// bigWeights is a safetensors file of n F32 values (i%97/97) in two
// tensors.
func bigWeights(t testing.TB, n int) ([]byte, []float64) {
	t.Helper()
	v := make([]float64, n)
	for i := range v {
		v[i] = float64(float32(float64(i%97) / 97))
	}
	w, err := EncodeWeights([]fl.Tensor{{Name: "a", DType: "F32", Shape: []int64{int64(n - 10)}}, {Name: "b", DType: "F32", Shape: []int64{10}}}, v)
	if err != nil {
		t.Fatal(err)
	}
	return w, v
}

// TestLearnLargeModel: a model of 800,000 F32 values (3.2 MB, several
// times what one message carries) goes to three nodes in chunks, their
// updates come back in chunks, and secure aggregation and the plain
// average agree with the expected average.
func TestLearnLargeModel(t *testing.T) {
	prog := readProgram(t, "shift.py")
	rows := []int{300, 200, 250}
	a, targets := federation(t, 10, map[string]string{"clin": synth(41, rows[0], 0)}, map[string]string{"clin": synth(42, rows[1], 0)}, map[string]string{"clin": synth(43, rows[2], 0)})
	withExecutor(t, a, prog)
	w, v := bigWeights(t, 800_000)
	if len(w) < 3<<20 {
		t.Fatalf("the model is %d bytes", len(w))
	}
	shift := 0.0
	for _, n := range rows {
		shift += float64(n) * float64(float32(float64(n)/1000))
	}
	shift /= 750
	spec := LearningSpec{Name: "big", Program: prog, Weights: w, Rounds: 1}
	r := &Runner{Ask: a, Researcher: "rosa"}
	secure, err := r.Learn(context.Background(), "big-1", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("secure: %v", err)
	}
	no := false
	spec.Secure = &no
	plain, err := r.Learn(context.Background(), "big-2", spec, targets, 0, nil, nil)
	if err != nil {
		t.Fatalf("plain: %v", err)
	}
	ws, wp := weightsOf(t, secure.Weights), weightsOf(t, plain.Weights)
	if len(ws) != len(v) || len(wp) != len(v) {
		t.Fatalf("%d and %d values, want %d", len(ws), len(wp), len(v))
	}
	bad := 0
	for i := range v {
		want := v[i] + shift
		if math.Abs(ws[i]-wp[i]) > 1e-6 || math.Abs(ws[i]-want) > 1e-5 {
			if bad++; bad < 5 {
				t.Errorf("value %d: secure %g, plain %g, want %g", i, ws[i], wp[i], want)
			}
		}
	}
	for _, st := range []*LearningState{secure, plain} {
		if rd := st.Rounds[0]; rd.Samples != 750 || len(rd.Participants) != 3 {
			t.Errorf("round %+v", rd)
		}
	}
	// Nothing stays pending at the nodes once the run ended.
	for id, n := range a.nodes {
		n.chunks.mu.Lock()
		if len(n.chunks.transfers)+len(n.chunks.offers) != 0 {
			t.Errorf("%s keeps %d transfers and %d answers", id, len(n.chunks.transfers), len(n.chunks.offers))
		}
		n.chunks.mu.Unlock()
	}
}

// chunkBody is a weights chunk step for node1.
func chunkBody(comp string, p WeightsChunkParams) fed.ComputeBody {
	raw, _ := json.Marshal(p)
	return fed.ComputeBody{Computation: comp, Step: StepWeightsChunk, Round: 1, Permit: "permit-node1", Researcher: "rosa", Params: raw}
}

// TestChunkRefusals: a tampered file, a total over the node's maximum,
// chunks without a permit, chunks or kept answers of another computation
// are refused; the node keeps a bounded number of transfers.
func TestChunkRefusals(t *testing.T) {
	a, _ := federation(t, 10, map[string]string{})
	n := a.nodes["node1"]
	n.MaxTransfer = 2 << 20
	ctx := context.Background()
	w, _ := bigWeights(t, 300_000) // 1.2 MB: three chunks
	d := digestOf(w)
	send := func(comp string, data []byte, digest string) fed.ComputeAnswer {
		var ans fed.ComputeAnswer
		for off := 0; off < len(data); off += chunkSize {
			end := min(off+chunkSize, len(data))
			ans = n.Handle(ctx, "t", chunkBody(comp, WeightsChunkParams{Digest: digest, Offset: int64(off), Total: int64(len(data)), Data: data[off:end]}))
			if ans.Refused != "" || ans.Error != "" {
				return ans
			}
		}
		return ans
	}
	claims, _ := a.envs["node1"].CheckPermit(ctx, "permit-node1", "rosa")
	train := func(comp string) error {
		_, err := n.takeWeights(claims, fed.ComputeBody{Computation: comp, Step: StepTrain, Round: 1}, d, int64(len(w)))
		return err
	}

	// A tampered chunk: the assembled file does not match its digest.
	tampered := append([]byte(nil), w...)
	tampered[len(w)-3] ^= 1
	if ans := send("c1", tampered, d); ans.Refused != fed.RefusedInvalid || !strings.Contains(ans.Reason, "digest") {
		t.Errorf("a tampered file: %+v", ans)
	}
	if err := train("c1"); err == nil || !strings.Contains(err.Error(), "not all arrived") {
		t.Errorf("training on a refused file: %v", err)
	}

	// A total over the node's maximum.
	if ans := n.Handle(ctx, "t", chunkBody("c1", WeightsChunkParams{Digest: d, Total: 3 << 20, Data: w[:100]})); ans.Refused != fed.RefusedInvalid || !strings.Contains(ans.Reason, "takes 1 to") {
		t.Errorf("an oversize total: %+v", ans)
	}

	// Without a permit: refused before anything is kept.
	body := chunkBody("c1", WeightsChunkParams{Digest: d, Total: int64(len(w)), Data: w[:chunkSize]})
	body.Permit = "permit-node2"
	if ans := n.Handle(ctx, "t", body); ans.Refused != fed.RefusedPermit {
		t.Errorf("a chunk without a permit: %+v", ans)
	}
	n.chunks.mu.Lock()
	if len(n.chunks.transfers) != 0 {
		t.Errorf("%d transfers kept after refusals", len(n.chunks.transfers))
	}
	n.chunks.mu.Unlock()

	// A good file for c2 is not c3's.
	if ans := send("c2", w, d); ans.Refused != "" || ans.Error != "" {
		t.Fatalf("a good file: %+v", ans)
	}
	if err := train("c3"); err == nil || !strings.Contains(err.Error(), "not all arrived") {
		t.Errorf("another computation's weights: %v", err)
	}
	// A chunk that does not follow the held bytes.
	if ans := n.Handle(ctx, "t", chunkBody("c4", WeightsChunkParams{Digest: d, Offset: chunkSize, Total: int64(len(w)), Data: w[chunkSize : 2*chunkSize]})); ans.Refused != fed.RefusedInvalid {
		t.Errorf("a chunk out of order: %+v", ans)
	}

	// A kept answer is fetched only by its computation under its permit.
	big := make([]byte, maxInlineResult+10)
	big[0], big[len(big)-1] = '"', '"'
	for i := 1; i < len(big)-1; i++ {
		big[i] = 'a'
	}
	ref, err := n.offerResult(claims, fed.ComputeBody{Computation: "c5", Step: StepPlain}, big)
	if err != nil || !strings.HasPrefix(string(ref), string(chunkedPrefix)) {
		t.Fatalf("offer: %v %s", err, ref)
	}
	var ca chunkedAnswer
	if err := json.Unmarshal(ref, &ca); err != nil || ca.Chunked.Length != int64(len(big)) {
		t.Fatalf("offer: %v %+v", err, ca)
	}
	ask := func(comp, permit string) fed.ComputeAnswer {
		raw, _ := json.Marshal(ResultChunkParams{Digest: ca.Chunked.Digest, Offset: 0, Length: 100})
		return n.Handle(ctx, "t", fed.ComputeBody{Computation: comp, Step: StepResultChunk, Permit: permit, Researcher: "rosa", Params: raw})
	}
	if ans := ask("c6", "permit-node1"); ans.Refused != fed.RefusedInvalid {
		t.Errorf("another computation's answer: %+v", ans)
	}
	if ans := ask("c5", "nope"); ans.Refused != fed.RefusedPermit {
		t.Errorf("an answer without a permit: %+v", ans)
	}
	if ans := ask("c5", "permit-node1"); ans.Refused != "" || ans.Error != "" {
		t.Errorf("its own answer: %+v", ans)
	}

	// The node keeps a bounded number of transfers.
	for i := 0; i < maxTransfers+1; i++ {
		ans := n.Handle(ctx, "t", chunkBody("many", WeightsChunkParams{Digest: digestOf([]byte{byte(i)}), Total: 10, Data: []byte{1}}))
		if i < maxTransfers-1 && ans.Refused != "" {
			t.Fatalf("transfer %d: %+v", i, ans)
		}
		if i == maxTransfers && ans.Refused != fed.RefusedBusy {
			t.Errorf("one transfer too many: %+v", ans)
		}
	}
}

// tamperAsker changes a byte of every result chunk it carries.
type tamperAsker struct{ *memAsker }

func (a tamperAsker) Step(ctx context.Context, node string, body fed.ComputeBody, wait time.Duration) (fed.ComputeAnswer, error) {
	ans, err := a.memAsker.Step(ctx, node, body, wait)
	if err == nil && body.Step == StepResultChunk {
		var rc ResultChunkResult
		if json.Unmarshal(ans.Result, &rc) == nil && len(rc.Data) > 10 {
			rc.Data[10] ^= 1
			ans.Result, _ = json.Marshal(rc)
		}
	}
	return ans, err
}

// TestResultDigestAtHub: a large answer altered on its way is refused
// by the hub (the node drops).
func TestResultDigestAtHub(t *testing.T) {
	a, targets := federation(t, 10, map[string]string{}, map[string]string{})
	size := 200_000
	w := make([]float64, size)
	for id, n := range a.nodes {
		n.keep(&update{comp: "fl", permit: "pm-" + id, plain: true, round: 1, weights: w, samples: 100, created: n.now()})
	}
	r := &Runner{Ask: a, Researcher: "rosa"}
	left := map[string]outcome{}
	got := r.each(context.Background(), "fl", StepPlain, 1, targets, time.Minute, func(Target) (any, error) { return PlainParams{Round: 1}, nil }, nil, left)
	if len(got) != 2 {
		t.Fatalf("plain updates: %d, left %v", len(got), left)
	}
	var pr PlainResult
	if err := json.Unmarshal(got["node1"].Result, &pr); err != nil || len(pr.Weights) != 8*size {
		t.Fatalf("a fetched update: %v, %d bytes", err, len(pr.Weights))
	}
	r.Ask = tamperAsker{a}
	left = map[string]outcome{}
	got = r.each(context.Background(), "fl", StepPlain, 1, targets, time.Minute, func(Target) (any, error) { return PlainParams{Round: 1}, nil }, nil, left)
	if len(got) != 0 || !strings.Contains(left["node1"].Reason, "digest") {
		t.Errorf("tampered answers: %d taken, left %v", len(got), left)
	}
}

// BenchmarkRound10Nodes is the overhead one FedAvg round adds to the
// nodes' training for a 10 MB model (2.6 million F32 values) across ten
// nodes in memory: the global weights sent to every node in chunks and
// assembled there, then the kept updates summed under secure aggregation
// (real secagg, 128-bit ring, the masked parts fetched in chunks) or
// fetched in the clear and averaged, and the new weights encoded.
func BenchmarkRound10Nodes(b *testing.B) {
	size := 2_600_000
	if testing.Short() {
		size = 260_000
	}
	for _, secure := range []bool{false, true} {
		b.Run(fmt.Sprintf("secure=%v", secure), func(b *testing.B) {
			tabs := make([]map[string]string, 10)
			for i := range tabs {
				tabs[i] = map[string]string{}
			}
			a, targets := federation(b, 10, tabs...)
			w, v := bigWeights(b, size)
			template, err := fl.ReadSafetensors(bytes.NewReader(w))
			if err != nil {
				b.Fatal(err)
			}
			for id, n := range a.nodes {
				n.keep(&update{comp: "fl", permit: "pm-" + id, plain: !secure, round: 1, weights: v, samples: 100, created: n.now()})
			}
			r := &Runner{Ask: a, Researcher: "rosa"}
			ctx := context.Background()
			b.SetBytes(int64(len(w)))
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				i++
				tp := TrainParams{Weights: w}
				left := map[string]outcome{}
				live := r.sendWeights(ctx, "fl", 1, &tp, targets, left)
				if len(live) != 10 {
					b.Fatalf("weights sent to %d nodes: %v", len(live), left)
				}
				for id, n := range a.nodes {
					claims, _ := a.envs[id].CheckPermit(ctx, "permit-"+id, "rosa")
					if _, err := n.takeWeights(claims, fed.ComputeBody{Computation: "fl", Round: 1}, tp.WeightsDigest, tp.WeightsLength); err != nil {
						b.Fatal(err)
					}
				}
				var avg []float64
				if secure {
					agg, err := r.Aggregate(ctx, "fl", 1, fmt.Sprintf("s-%d", i), targets, Part{Kind: PartUpdate, Round: 1}, size+1)
					if err != nil || len(agg.Rows) != 10 {
						b.Fatal(err)
					}
					if avg, _, err = fl.FromWeighted(agg.Sum); err != nil {
						b.Fatal(err)
					}
				} else {
					got := r.each(ctx, "fl", StepPlain, 1, targets, time.Minute, func(Target) (any, error) { return PlainParams{Round: 1}, nil }, nil, left)
					var ups []fl.Update
					for id, ans := range got {
						var pr PlainResult
						if err := json.Unmarshal(ans.Result, &pr); err != nil {
							b.Fatal(err)
						}
						u, err := bytesFloats(pr.Weights)
						if err != nil {
							b.Fatal(err)
						}
						ups = append(ups, fl.Update{Node: id, Weights: u, Samples: pr.Samples})
					}
					if avg, _, err = fl.FedAvg(ups, size); err != nil || len(ups) != 10 {
						b.Fatal(err, left)
					}
				}
				if _, err := EncodeWeights(template, avg); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(a.bytes.Load())/float64(i), "msgbytes/op")
			b.ReportMetric(float64(a.steps.Load())/float64(i), "steps/op")
		})
	}
}

// TestChunkFitsMessage: the largest chunk each way, and the largest
// inline answer, fit one signed message with the link's encoding.
func TestChunkFitsMessage(t *testing.T) {
	_, key, _ := ed25519.GenerateKey(rand.Reader)
	data := make([]byte, chunkSize)
	for i := range data {
		data[i] = byte(i * 7)
	}
	params, _ := json.Marshal(WeightsChunkParams{Digest: digestOf(data), Offset: 1 << 30, Total: 1 << 31, Data: data})
	body, _ := json.Marshal(fed.ComputeBody{Computation: strings.Repeat("c", 64), Step: StepWeightsChunk, Round: 1000, Permit: strings.Repeat("p", 2048), Researcher: strings.Repeat("r", 64), Params: params})
	now := time.Now()
	task, err := fed.Seal(key, fed.SignerHub, fed.Task{ID: fed.NewID(), Kind: fed.TaskCompute, Issued: now, Expires: now.Add(time.Hour), Audience: "node1", Body: body})
	if err != nil || len(task) > fed.MaxMessage {
		t.Errorf("a weights chunk: %d bytes, %v", len(task), err)
	}
	res, _ := json.Marshal(ResultChunkResult{Data: data})
	inline := make([]byte, maxInlineResult)
	for i := range inline {
		inline[i] = '1'
	}
	for _, r := range [][]byte{res, inline} {
		ans, err := fed.Seal(key, "node1", fed.ComputeAnswer{Node: "node1", TaskID: fed.NewID(), Computation: strings.Repeat("c", 64), Step: StepResultChunk, Round: 1000, Result: r})
		if err != nil || len(ans) > fed.MaxMessage {
			t.Errorf("an answer of %d bytes: %d bytes sealed, %v", len(r), len(ans), err)
		}
	}
}
