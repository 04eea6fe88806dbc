package api

import (
	"net/http"

	"github.com/chronostream/chronostream/event"
)

const (
	defaultAnnotationLimit = 1000
	maxAnnotationLimit     = 10000
	// maxAnnotationTextBytes bounds an answer's text, title and region
	// strings (each up to an event's size as written): marks on a chart
	// need little, and 10,000 of them must not hold gigabytes.
	maxAnnotationTextBytes = 4096
)

// annotationJSON is one mark for a chart: a point in time, or a region when
// EndMS is set. Times are Unix milliseconds, the unit charts draw in.
type annotationJSON struct {
	Seq    uint64            `json:"seq"`
	Story  string            `json:"story"`
	TimeMS float64           `json:"time_ms"`
	EndMS  *float64          `json:"end_ms,omitempty"`
	Text   string            `json:"text"`
	Title  string            `json:"title,omitempty"`
	Region string            `json:"region,omitempty"`
	Open   bool              `json:"open,omitempty"`
	Tags   map[string]string `json:"tags"`
}

// annotations serves GET /api/v1/chronicles/{chronicle}/annotations: the
// chronicle's events of kind annotation between from and to, oldest first,
// as points and regions. The convention (shared with `chronostream annotate`
// and the annotation sinks): the string field text (and optionally title);
// a region is one event with the int field time_end (Unix ns), or two
// events sharing the string field region with phase "start" then "end".
// A start whose end is not (yet) in range is an open region ("open":true,
// ending at to or now); an end whose start lies before from begins at from.
func (a *API) annotations(w http.ResponseWriter, r *http.Request) {
	chronicle, _, err := names(r)
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	p, err := newParams(r, "from", "to", "story", "limit")
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	mq, err := mergedQuery(p, chronicle)
	if err == nil {
		mq.Limit, err = intParam(p, "limit", defaultAnnotationLimit, maxAnnotationLimit)
	}
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	var x expander
	mq.Match = func(e *event.Event) bool { return e.Kind == event.KindAnnotation }
	out := []annotationJSON{}
	open := map[string]int{} // region name → index in out of its start
	read := 0
	_, err = a.cfg.Store.ReadMerged(r.Context(), mq, func(e *event.Event) error {
		read++
		x.expand(e)
		an := annotationJSON{Seq: e.Seq, Story: e.Story, TimeMS: float64(e.Time) / 1e6,
			Text: clip(textOf(e, "text"), maxAnnotationTextBytes), Title: clip(textOf(e, "title"), maxAnnotationTextBytes),
			Region: clip(textOf(e, "region"), maxAnnotationTextBytes), Tags: e.Tags}
		if an.Tags == nil {
			an.Tags = map[string]string{}
		}
		if end := numberOr(e, "time_end", 0); end > 0 {
			ms := end / 1e6
			an.EndMS = &ms
			out = append(out, an)
			return nil
		}
		if an.Region != "" {
			switch textOf(e, "phase") {
			case "start":
				open[an.Region] = len(out)
				an.Open = true
			case "end":
				ms := an.TimeMS
				if i, ok := open[an.Region]; ok {
					out[i].EndMS, out[i].Open = &ms, false
					if out[i].Text == "" {
						out[i].Text = an.Text
					}
					delete(open, an.Region)
					return nil
				}
				// Its start lies before the range: the region begins at from.
				an.TimeMS = float64(mq.From) / 1e6
				an.EndMS = &ms
			}
		}
		out = append(out, an)
		return nil
	})
	a.cfg.Metrics.ReadEvents.WithLabelValues("annotations").Add(float64(read))
	if err != nil {
		a.writeError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"annotations": out})
}
