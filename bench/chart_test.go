package bench

import (
	"bytes"
	"image/png"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRenderChart(t *testing.T) {
	panels := []ChartPanel{
		{Title: "1 worker", Rows: []ChartRow{{Label: "baseline", P50: 0.4, P90: 0.6, P99: 1.2}, {Label: "suite (4 filters)", P50: 0.9, P90: 1.4, P99: 3.1}}},
		{Title: "2 workers", Rows: []ChartRow{{Label: "baseline", P50: 0.3, P90: 0.5, P99: 0.9}}},
	}
	img := RenderChart("latency at 1000 rps", panels)
	var buf bytes.Buffer
	require.NoError(t, WritePNG(&buf, img))
	decoded, err := png.Decode(&buf)
	require.NoError(t, err)
	require.Equal(t, chartWidth, decoded.Bounds().Dx())

	// The longest bar (p99 of the second row) ends at the axis end: the axis
	// is a nice multiple at or above the panel's maximum.
	step, top := niceAxis(3.1)
	require.Equal(t, 0.5, step)
	require.Equal(t, 3.5, top)
	require.Equal(t, colorPercentile[0], img.RGBAAt(labelWidth+1, headerHeight+textHeight()+8+1), "first bar starts at the axis origin")
}

func TestNiceAxis(t *testing.T) {
	tests := []struct {
		name           string
		max, step, top float64
	}{
		{name: "sub-millisecond", max: 0.73, step: 0.1, top: 0.8},
		{name: "tens", max: 42, step: 10, top: 50},
		{name: "exact multiple", max: 8, step: 1, top: 8},
		{name: "empty panel", max: 0, step: 1, top: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			step, top := niceAxis(tc.max)
			require.InDelta(t, tc.step, step, 1e-9)
			require.InDelta(t, tc.top, top, 1e-9)
		})
	}
}

func TestGlyphs_AllRowsFiveWide(t *testing.T) {
	for r, g := range glyphs {
		for i, row := range g {
			require.Len(t, row, glyphWidth, "glyph %q row %d", r, i)
		}
	}
}

func TestChartLabel(t *testing.T) {
	require.Equal(t, "baseline", chartLabel("baseline"))
	long := chartLabel("a very long scenario label that does not fit")
	require.LessOrEqual(t, textWidth(long), labelWidth)
}
