package bench

import (
	"image"
	"image/color"
	"image/png"
	"io"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// ChartRow is one scenario's latency at the fixed rate, in milliseconds.
type ChartRow struct {
	Label         string
	P50, P90, P99 float64
}

// ChartPanel is a titled group of rows sharing one axis (one worker count).
type ChartPanel struct {
	Title string
	Rows  []ChartRow
}

// Chart layout, in pixels. Text is the 5×7 font scaled by textScale.
const (
	chartWidth   = 1000
	textScale    = 2
	labelWidth   = 250
	rightMargin  = 70
	barHeight    = 7
	barGap       = 2
	rowGap       = 10
	panelGap     = 30
	axisHeight   = 24
	headerHeight = 40
)

var (
	colorBackground = color.RGBA{255, 255, 255, 255}
	colorText       = color.RGBA{30, 30, 30, 255}
	colorGrid       = color.RGBA{225, 225, 225, 255}
	colorPercentile = [3]color.RGBA{{46, 134, 193, 255}, {243, 156, 18, 255}, {192, 57, 43, 255}}
	percentileNames = [3]string{"p50", "p90", "p99"}
)

// RenderChart draws horizontal bars of p50, p90 and p99 per row, one panel per
// worker count, with a shared legend. The font is hand-drawn (font.go): no
// dependency beyond the standard library.
func RenderChart(title string, panels []ChartPanel) *image.RGBA {
	rowHeight := 3*barHeight + 2*barGap + rowGap
	height := headerHeight
	for _, p := range panels {
		height += textHeight() + 8 + len(p.Rows)*rowHeight + axisHeight + panelGap
	}
	img := image.NewRGBA(image.Rect(0, 0, chartWidth, height))
	fill(img, img.Bounds(), colorBackground)
	drawText(img, 10, 10, title, colorText)
	x := chartWidth - rightMargin - 3*90
	for i, name := range percentileNames {
		fill(img, image.Rect(x, 12, x+14, 12+textHeight()), colorPercentile[i])
		drawText(img, x+20, 12, name, colorText)
		x += 90
	}
	y := headerHeight
	for _, p := range panels {
		drawText(img, 10, y, p.Title, colorText)
		y += textHeight() + 8
		max := 0.0
		for _, r := range p.Rows {
			max = math.Max(max, r.P99)
		}
		step, top := niceAxis(max)
		x0, x1 := labelWidth, chartWidth-rightMargin
		scale := func(v float64) int { return x0 + int(math.Round(v/top*float64(x1-x0))) }
		bottom := y + len(p.Rows)*rowHeight
		for v := 0.0; v <= top+step/2; v += step {
			gx := scale(v)
			fill(img, image.Rect(gx, y-2, gx+1, bottom), colorGrid)
			label := formatTick(v, step)
			drawText(img, gx-textWidth(label)/2, bottom+6, label, colorText)
		}
		for _, r := range p.Rows {
			drawText(img, 10, y+(3*barHeight+2*barGap-textHeight())/2, r.Label, colorText)
			by := y
			for i, v := range [3]float64{r.P50, r.P90, r.P99} {
				fill(img, image.Rect(x0, by, max1(scale(v), x0+1), by+barHeight), colorPercentile[i])
				by += barHeight + barGap
			}
			y += rowHeight
		}
		y = bottom + axisHeight + panelGap
	}
	return img
}

// WritePNG encodes the chart.
func WritePNG(w io.Writer, img image.Image) error { return png.Encode(w, img) }

func max1(a, b int) int {
	if a > b {
		return a
	}
	return b
}

// niceAxis picks a tick step of 1, 2 or 5 times a power of ten giving at most
// eight ticks, and the axis end, a multiple of the step at or above max.
func niceAxis(max float64) (step, top float64) {
	if max <= 0 || math.IsNaN(max) || math.IsInf(max, 0) {
		return 1, 1
	}
	raw := max / 8
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		step = m * mag
		if step >= raw {
			break
		}
	}
	return step, math.Ceil(max/step) * step
}

func formatTick(v, step float64) string {
	decimals := 0
	if step < 1 {
		decimals = int(math.Ceil(-math.Log10(step)))
	}
	return strconv.FormatFloat(v, 'f', decimals, 64)
}

func fill(img *image.RGBA, r image.Rectangle, c color.RGBA) {
	r = r.Intersect(img.Bounds())
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			img.SetRGBA(x, y, c)
		}
	}
}

func textHeight() int { return glyphHeight * textScale }

func textWidth(s string) int { return len([]rune(s)) * (glyphWidth + 1) * textScale }

// drawText writes s with its top-left corner at (x, y).
func drawText(img *image.RGBA, x, y int, s string, c color.RGBA) {
	for _, r := range s {
		g, ok := glyphs[unicode.ToUpper(r)]
		if !ok {
			g = [7]string{"#####", "#   #", "#   #", "#   #", "#   #", "#   #", "#####"}
		}
		for gy, row := range g {
			for gx, ink := range row {
				if ink == '#' {
					fill(img, image.Rect(x+gx*textScale, y+gy*textScale, x+(gx+1)*textScale, y+(gy+1)*textScale), c)
				}
			}
		}
		x += (glyphWidth + 1) * textScale
	}
}

// chartLabel shortens a scenario label to what fits left of the bars.
func chartLabel(s string) string {
	maxRunes := labelWidth/((glyphWidth+1)*textScale) - 1
	if r := []rune(s); len(r) > maxRunes {
		return strings.TrimSpace(string(r[:maxRunes-1])) + "."
	}
	return s
}
