package lambda_test

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/lifeguardhq/lifeguard/internal/sandbox"
)

// reportQuantiles reports the p50 and p99 of the measured durations.
func reportQuantiles(b *testing.B, ds []time.Duration) {
	slices.Sort(ds)
	q := func(p float64) float64 { return float64(ds[int(p*float64(len(ds)-1))].Microseconds()) / 1000 }
	b.ReportMetric(q(0.50), "p50-ms")
	b.ReportMetric(q(0.99), "p99-ms")
	b.ReportMetric(0, "ns/op")
}

// BenchmarkInvokeCold measures Invoke through the SDK when every call
// starts a new execution environment of the aws-lambda-go function (a
// configuration change before each retires the warm one).
func BenchmarkInvokeCold(b *testing.B) {
	e := newEnv(b, sandbox.Config{})
	e.create(b, "cold", zipOf(b, map[string][]byte{"bootstrap": echoBootstrap}), nil)
	var ds []time.Duration
	for i := 0; b.Loop(); i++ {
		b.StopTimer()
		if _, err := e.c.UpdateFunctionConfiguration(b.Context(), &awslambda.UpdateFunctionConfigurationInput{
			FunctionName: aws.String("cold"), Description: aws.String(strconv.Itoa(i)),
		}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		start := time.Now()
		out, err := e.c.Invoke(b.Context(), &awslambda.InvokeInput{FunctionName: aws.String("cold"), Payload: []byte(`{"name":"cold"}`)})
		ds = append(ds, time.Since(start))
		if err != nil || out.FunctionError != nil {
			b.Fatalf("Invoke: %v %v", err, out)
		}
	}
	reportQuantiles(b, ds)
}

// BenchmarkInvokeWarm measures Invoke through the SDK on a warm
// environment of the aws-lambda-go function.
func BenchmarkInvokeWarm(b *testing.B) {
	e := newEnv(b, sandbox.Config{})
	e.create(b, "warm", zipOf(b, map[string][]byte{"bootstrap": echoBootstrap}), nil)
	if _, err := e.c.Invoke(b.Context(), &awslambda.InvokeInput{FunctionName: aws.String("warm")}); err != nil {
		b.Fatal(err)
	}
	var ds []time.Duration
	for b.Loop() {
		start := time.Now()
		out, err := e.c.Invoke(b.Context(), &awslambda.InvokeInput{FunctionName: aws.String("warm"), Payload: []byte(`{"name":"warm"}`)})
		ds = append(ds, time.Since(start))
		if err != nil || out.FunctionError != nil {
			b.Fatalf("Invoke: %v %v", err, out)
		}
	}
	reportQuantiles(b, ds)
}
