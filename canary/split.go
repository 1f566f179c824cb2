package canary

import "math"

type hashSource uint8

const (
	hashRandom hashSource = iota
	hashHeader
	hashCookie
	hashSourceAddress
)

// split picks a version by weighted rendezvous hashing: every version scores
// w / -ln(u), u being a uniform hash of (key, version), and the highest score
// wins. A version wins with probability w / sum(w), a key's scores do not
// depend on the other versions' weights, and raising one weight raises only
// that version's scores, so the only keys that move are those moving into the
// raised version. See Schindelhauer and Schomaker, "Weighted distributed hash
// tables" (2005), and RATIONALE.md.
type split struct {
	versions []int // indexes into Router.versions, weight > 0 only
	weights  []float64
	seeds    []uint64
	source   hashSource
	name     string // header or cookie name
}

// key returns the hash of the request's split key; ok is false when the key is
// missing and the caller must fall back to a random draw.
func (s *split) key(req Request) (uint64, bool) {
	switch s.source {
	case hashHeader:
		if v, ok := req.Header(s.name); ok && v != "" {
			return hashString(v), true
		}
	case hashCookie:
		if h, ok := req.Header("cookie"); ok {
			if v, ok := Cookie(h, s.name); ok && v != "" {
				return hashString(v), true
			}
		}
	case hashSourceAddress:
		if a := hostOf(req.SourceAddress()); a != "" {
			return hashString(a), true
		}
	}
	return 0, false
}

// pick returns the index into Router.versions that wins for key.
func (s *split) pick(key uint64) int {
	best, bestScore := s.versions[0], math.Inf(-1)
	for i, v := range s.versions {
		h := mix64(key ^ s.seeds[i])
		// (h>>11 + 0.5) / 2^53 is uniform in the open interval (0, 1): ln
		// never sees 0 or 1.
		u := (float64(h>>11) + 0.5) / (1 << 53)
		score := s.weights[i] / -math.Log(u)
		if score > bestScore {
			best, bestScore = v, score
		}
	}
	return best
}

// has reports whether version v has weight in the split.
func (s *split) has(v int) bool {
	for _, w := range s.versions {
		if w == v {
			return true
		}
	}
	return false
}

// hashString is 64-bit FNV-1a followed by a mixing step. It is fixed (not
// hash/maphash, which is seeded per process) because every worker's VM and
// every Envoy replica must send the same key to the same version.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix64(h)
}

// mix64 is the splitmix64 finalizer: it spreads every input bit over the
// output so that nearby keys (user ids 1, 2, 3...) land far apart.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}
