// Drives GIE v1.5.0's own scheduler (sigs.k8s.io/gateway-api-inference-extension)
// on the workload of Hermes-router's scheduler benchmark, for a side-by-side
// ratio (`npm run bench -- scheduler --gie`). A test tool: CI does not build it.
//
// Profile = GIE's default: approx-prefix-cache-producer (PrepareData: prompt
// hashing + longest-prefix match; PreRequest: recording the pick), then
// queue-scorer 2, kv-cache-utilization-scorer 2, prefix-cache-scorer 3,
// max-score-picker, single-profile-handler. Per decision, as GIE's director
// does it: an endpoint snapshot (NewEndpoint clones of metadata, metrics and
// attributes), PrepareRequestData, Schedule, PreRequest. The bodies (JSON
// lines, one chat request each) are parsed before the clock, as in our bench.
//
//	decide   = snapshot + PrepareRequestData + Schedule (the request waits for it);
//	per core = timed decisions / process CPU seconds over the timed loop,
//	           PreRequest's asynchronous record included (GOMAXPROCS=1).
//
// Output: one JSON object on stdout.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"runtime"
	"sort"
	"strconv"
	"syscall"
	"time"

	k8stypes "k8s.io/apimachinery/pkg/types"

	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/datalayer"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/plugin"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/requestcontrol"
	fwksched "sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/interface/scheduling"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/requestcontrol/dataproducer/approximateprefix"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/picker"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/profile"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/scorer/kvcacheutilization"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/scorer/prefix"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/framework/plugins/scheduling/scorer/queuedepth"
	"sigs.k8s.io/gateway-api-inference-extension/pkg/epp/scheduling"
)

type result struct {
	Endpoints              int     `json:"endpoints"`
	Decisions              int     `json:"decisions"`
	P50Us                  float64 `json:"p50Us"`
	P99Us                  float64 `json:"p99Us"`
	ScheduleP50Us          float64 `json:"scheduleP50Us"`
	DecisionsPerSecPerCore float64 `json:"decisionsPerSecPerCore"`
	GoMaxProcs             int     `json:"gomaxprocs"`
	GoVersion              string  `json:"goVersion"`
}

func cpuSeconds() float64 {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1) * p / 100)
	return sorted[i]
}

func main() {
	bodiesPath := flag.String("bodies", "", "JSON lines: one chat-completions body per decision (warm-up first)")
	endpointCount := flag.Int("endpoints", 32, "number of endpoints")
	warmup := flag.Int("warmup", 200, "warm-up decisions (the first lines of -bodies)")
	seed := flag.Int64("seed", 1, "random seed of the endpoint signals")
	flag.Parse()
	if *bodiesPath == "" {
		fmt.Fprintln(os.Stderr, "-bodies is required")
		os.Exit(2)
	}

	// --- bodies, parsed before the clock ---
	f, err := os.Open(*bodiesPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	var requests []*fwksched.LLMRequest
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var body struct {
			Model string `json:"model"`
			fwksched.ChatCompletionsRequest
		}
		if err := json.Unmarshal(sc.Bytes(), &body); err != nil {
			fmt.Fprintln(os.Stderr, "bad body:", err)
			os.Exit(1)
		}
		chat := body.ChatCompletionsRequest
		requests = append(requests, &fwksched.LLMRequest{
			RequestId:   "req-" + strconv.Itoa(len(requests)),
			TargetModel: body.Model,
			Body:        &fwksched.LLMRequestBody{ChatCompletions: &chat},
			Headers:     map[string]string{},
		})
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if len(requests) <= *warmup {
		fmt.Fprintln(os.Stderr, "need more bodies than warm-up decisions")
		os.Exit(2)
	}

	// --- the pool and the profile ---
	ctx := context.Background()
	metas := make([]*datalayer.EndpointMetadata, *endpointCount)
	metrics := make([]*datalayer.Metrics, *endpointCount)
	names := make([]k8stypes.NamespacedName, *endpointCount)
	for i := range metas {
		names[i] = k8stypes.NamespacedName{Namespace: "default", Name: fmt.Sprintf("pod-%d", i)}
		metas[i] = &datalayer.EndpointMetadata{
			NamespacedName: names[i],
			PodName:        names[i].Name,
			Address:        fmt.Sprintf("10.0.%d.%d", i/250, i%250+1),
			Port:           "8000",
			Labels:         map[string]string{},
		}
		metrics[i] = datalayer.NewMetrics()
	}
	handle := plugin.NewEppHandle(ctx, func() []k8stypes.NamespacedName { return names })
	producerPlugin, err := approximateprefix.ApproxPrefixCacheFactory("", json.RawMessage(`{"autoTune":false,"blockSizeTokens":16}`), handle)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	prepare := producerPlugin.(requestcontrol.PrepareDataPlugin)
	preRequest := producerPlugin.(requestcontrol.PreRequest)
	prefixScorer, _ := prefix.New(ctx)
	prof := scheduling.NewSchedulerProfile().
		WithScorers(
			scheduling.NewWeightedScorer(queuedepth.NewQueueScorer(), 2),
			scheduling.NewWeightedScorer(kvcacheutilization.NewKVCacheUtilizationScorer(), 2),
			scheduling.NewWeightedScorer(prefixScorer, 3),
		).
		WithPicker(picker.NewMaxScorePicker(1))
	sched := scheduling.NewSchedulerWithConfig(scheduling.NewSchedulerConfig(
		profile.NewSingleProfileHandler(),
		map[string]fwksched.SchedulerProfile{"default": prof},
	))

	rng := rand.New(rand.NewSource(*seed))
	timed := len(requests) - *warmup
	samples := make([]float64, 0, timed)
	schedSamples := make([]float64, 0, timed)
	var cpuStart float64
	for i, req := range requests {
		if i == *warmup {
			runtime.GC()
			cpuStart = cpuSeconds()
		}
		// --- outside the clock: new signals on every endpoint ---
		now := time.Now()
		for _, m := range metrics {
			m.WaitingQueueSize = rng.Intn(21)
			m.RunningRequestsSize = rng.Intn(65)
			m.KVCacheUsagePercent = rng.Float64()
			m.UpdateTime = now
		}
		// --- the decision ---
		t0 := time.Now()
		snapshot := make([]fwksched.Endpoint, len(metas))
		for j := range metas {
			snapshot[j] = fwksched.NewEndpoint(metas[j], metrics[j], nil)
		}
		if err := prepare.PrepareRequestData(ctx, req, snapshot); err != nil {
			fmt.Fprintln(os.Stderr, "PrepareRequestData:", err)
			os.Exit(1)
		}
		t1 := time.Now()
		res, err := sched.Schedule(ctx, req, snapshot)
		t2 := time.Now()
		if err != nil {
			fmt.Fprintln(os.Stderr, "Schedule:", err)
			os.Exit(1)
		}
		preRequest.PreRequest(ctx, req, res)
		if i >= *warmup {
			samples = append(samples, float64(t2.Sub(t0).Nanoseconds())/1e3)
			schedSamples = append(schedSamples, float64(t2.Sub(t1).Nanoseconds())/1e3)
		}
	}
	// Let the asynchronous records finish inside the CPU measurement.
	for k := 0; k < 100; k++ {
		runtime.Gosched()
	}
	time.Sleep(50 * time.Millisecond)
	cpu := cpuSeconds() - cpuStart
	sort.Float64s(samples)
	sort.Float64s(schedSamples)
	out := result{
		Endpoints:              *endpointCount,
		Decisions:              timed,
		P50Us:                  percentile(samples, 50),
		P99Us:                  percentile(samples, 99),
		ScheduleP50Us:          percentile(schedSamples, 50),
		DecisionsPerSecPerCore: float64(timed) / cpu,
		GoMaxProcs:             runtime.GOMAXPROCS(0),
		GoVersion:              runtime.Version(),
	}
	_ = json.NewEncoder(os.Stdout).Encode(out)
}
