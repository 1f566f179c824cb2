//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
)

type fortioJSON struct {
	ActualQPS         float64
	DurationHistogram struct {
		Count       int
		Percentiles []struct {
			Percentile float64
			Value      float64 // seconds
		}
	}
	RetCodes map[string]int
}

// fortioRun is one `fortio load`; it returns the parsed JSON report.
func fortioRun(bin, dir, label string, args ...string) (fortioJSON, []string, error) {
	out := filepath.Join(dir, label+".json")
	full := append([]string{"load", "-json", out, "-loglevel", "error", "-p", "50,90,99"}, args...)
	cmd := exec.Command(bin, full...)
	var r fortioJSON
	if b, err := cmd.CombinedOutput(); err != nil {
		return r, full, fmt.Errorf("fortio %s: %v: %s", strings.Join(full, " "), err, b)
	}
	raw, err := os.ReadFile(out)
	if err != nil {
		return r, full, err
	}
	return r, full, json.Unmarshal(raw, &r)
}

func (r fortioJSON) percentileMs(p float64) float64 {
	for _, q := range r.DurationHistogram.Percentiles {
		if q.Percentile == p {
			return q.Value * 1000
		}
	}
	return math.NaN()
}

func (r fortioJSON) errors() int {
	n := 0
	for code, c := range r.RetCodes {
		if code != "200" {
			n += c
		}
	}
	return n
}

// loadArgs are the two fortio runs per scenario and round.
func throughputArgs(s Settings, url string) []string {
	return []string{"-qps", "0", "-c", strconv.Itoa(s.Concurrency), "-t", seconds(s.ThroughputSeconds), "-H", requestHeader, url}
}

func latencyArgs(s Settings, url string) []string {
	return []string{"-qps", strconv.Itoa(s.LatencyQPS), "-c", strconv.Itoa(s.LatencyConns), "-t", seconds(s.LatencySeconds), "-H", requestHeader, url}
}

func seconds(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) + "s" }

// roundOrder rotates the scenarios by the round and reverses every other
// round, so that no scenario always runs right after the same neighbour or
// at the same point of a round.
func roundOrder(n, round int) []int {
	order := make([]int, n)
	for i := range order {
		order[i] = (i + round) % n
	}
	if round%2 == 1 {
		for i, j := 0, n-1; i < j; i, j = i+1, j-1 {
			order[i], order[j] = order[j], order[i]
		}
	}
	return order
}
