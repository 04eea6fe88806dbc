// Package tsdb is the query engine's in-memory columnar index of the log:
// per chronicle (database), measurement (story), series (tag set) and
// field, the time-ordered points with rollups of fixed widths. It is
// derived from the log and rebuilt from it at start (see Follower); the log
// stays the truth.
package tsdb

import (
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/chronostream/chronostream/event"
)

// DefaultRollups are the rollup widths kept for every column. A window
// (or a range) merges the widest buckets that fit in it and reads the
// narrower ones, then raw points, at its edges. A bucket (fn.Summary) costs
// about 200 bytes, so the narrowest width sets the memory: with metrics
// sampled every 10 s, 10 min buckets add about 3 bytes a point where 1 min
// buckets would add 33, and a GROUP BY time(1m) reads at most 6 raw points
// a window anyway.
var DefaultRollups = []time.Duration{10 * time.Minute, time.Hour}

// Tag is one tag of a series.
type Tag struct{ Key, Value string }

// Series is one tag set of a measurement.
type Series struct {
	// ID numbers series in the order the index first saw them, as
	// InfluxDB's series ids do: rows of equal time come in that order.
	ID   uint64
	Key  string // measurement-independent canonical form: k=v,k=v sorted by key, escaped as in line protocol
	Tags []Tag  // sorted by key
	cols map[string]*Column
}

// Tag returns the value of tag k ("" when the series does not have it).
func (s *Series) Tag(k string) string {
	for _, t := range s.Tags {
		if t.Key == k {
			return t.Value
		}
	}
	return ""
}

// Column returns the series' column of field f, or nil.
func (s *Series) Column(f string) *Column { return s.cols[f] }

// Measurement is one story of a chronicle seen as an InfluxDB measurement.
// Its sorted series and tag keys are kept up to date by the writers (under
// the DB's write lock), so that readers holding the read lock only read.
type Measurement struct {
	Name    string
	series  map[string]*Series
	sorted  []*Series      // by Key
	tagKeys map[string]int // series having each tag key
	keys    []string       // tag keys, sorted
	// Fields holds each field's type: the first type seen. A point of
	// another type is not indexed (InfluxDB refuses such a write).
	Fields map[string]event.FieldType
}

// Series returns the measurement's series sorted by key.
func (m *Measurement) Series() []*Series { return m.sorted }

// TagKeys returns the tag keys of the measurement's series, sorted.
func (m *Measurement) TagKeys() []string { return m.keys }

func bySeriesKey(a *Series, key string) int { return strings.Compare(a.Key, key) }

func (m *Measurement) addSeries(s *Series) {
	m.series[s.Key] = s
	i, _ := slices.BinarySearchFunc(m.sorted, s.Key, bySeriesKey)
	m.sorted = slices.Insert(m.sorted, i, s)
	for _, t := range s.Tags {
		if m.tagKeys[t.Key]++; m.tagKeys[t.Key] == 1 {
			j, _ := slices.BinarySearch(m.keys, t.Key)
			m.keys = slices.Insert(m.keys, j, t.Key)
		}
	}
}

func (m *Measurement) removeSeries(s *Series) {
	delete(m.series, s.Key)
	if i, ok := slices.BinarySearchFunc(m.sorted, s.Key, bySeriesKey); ok {
		m.sorted = slices.Delete(m.sorted, i, i+1)
	}
	for _, t := range s.Tags {
		if m.tagKeys[t.Key]--; m.tagKeys[t.Key] == 0 {
			delete(m.tagKeys, t.Key)
			if j, ok := slices.BinarySearch(m.keys, t.Key); ok {
				m.keys = slices.Delete(m.keys, j, j+1)
			}
		}
	}
}

// DB is one chronicle's index. Its lock guards everything below it:
// appends and Prepare take it for writing, queries for reading.
type DB struct {
	Name string
	mu   sync.RWMutex
	meas map[string]*Measurement
	// applied is the newest block applied; evicted the first block kept.
	applied, evicted uint64
	widths           []int64
	stats            *stats
	points           int64 // stored points of this DB
	strBytes         int64 // bytes of its string values
	series           int64
	nextID           uint64
	full             bool // no room in the index: queries fail (ErrFull)
}

func newDB(name string, widths []int64, st *stats) *DB {
	return &DB{Name: name, meas: map[string]*Measurement{}, widths: widths, stats: st}
}

// Lock, Unlock, RLock and RUnlock expose the DB's lock to the query engine.
func (db *DB) Lock()    { db.mu.Lock() }
func (db *DB) Unlock()  { db.mu.Unlock() }
func (db *DB) RLock()   { db.mu.RLock() }
func (db *DB) RUnlock() { db.mu.RUnlock() }

// Measurement returns the measurement named name, or nil (hold a lock).
func (db *DB) Measurement(name string) *Measurement { return db.meas[name] }

// Measurements returns the names of the measurements, sorted (hold a lock).
func (db *DB) Measurements() []string {
	names := make([]string, 0, len(db.meas))
	for n, m := range db.meas {
		if len(m.series) > 0 {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	return names
}

// apply indexes the events of one block (hold the write lock). Events
// must have their tags and fields expanded.
func (db *DB) apply(block uint64, evs []event.Event) {
	for i := range evs {
		e := &evs[i]
		if len(e.Fields) == 0 {
			continue // InfluxDB has no point without a field
		}
		m := db.meas[e.Story]
		if m == nil {
			m = &Measurement{Name: e.Story, series: map[string]*Series{}, tagKeys: map[string]int{}, Fields: map[string]event.FieldType{}}
			db.meas[e.Story] = m
		}
		s := m.seriesFor(e.Tags, db)
		for f, v := range e.Fields {
			typ, ok := m.Fields[f]
			if !ok {
				typ = v.Type()
				m.Fields[f] = typ
			}
			if typ != v.Type() {
				db.stats.conflicts.Add(1)
				continue
			}
			c := s.cols[f]
			if c == nil {
				c = newColumn(typ, db.widths)
				s.cols[f] = c
			}
			c.add(e.Time, v, block)
			db.points++
			db.stats.points.Add(1)
			if typ == event.TypeString {
				n := int64(len(v.StringValue()))
				db.strBytes += n
				db.stats.strBytes.Add(n)
			}
		}
		if len(s.cols) == 0 { // every field conflicted: no series
			m.removeSeries(s)
			db.series--
			db.stats.series.Add(-1)
		}
	}
	db.applied = max(db.applied, block)
}

// keyEscaper escapes what separates a series key's tags, as line protocol does.
var keyEscaper = strings.NewReplacer(",", `\,`, "=", `\=`, " ", `\ `)

func (m *Measurement) seriesFor(tags map[string]string, db *DB) *Series {
	keys := make([]string, 0, len(tags))
	for k := range tags {
		if tags[k] != "" { // InfluxDB drops empty tag values
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	// Escaped as in InfluxDB's series keys: unescaped, {a: "b,c=d"} and
	// {a: "b", c: "d"} were one series, and series sorted otherwise than
	// influxd sorts them (rows of equal time, SHOW SERIES, SLIMIT).
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(',')
		}
		keyEscaper.WriteString(&b, k)
		b.WriteByte('=')
		keyEscaper.WriteString(&b, tags[k])
	}
	key := b.String()
	if s := m.series[key]; s != nil {
		return s
	}
	db.nextID++
	s := &Series{ID: db.nextID, Key: key, cols: map[string]*Column{}}
	for _, k := range keys {
		s.Tags = append(s.Tags, Tag{k, tags[k]})
	}
	m.addSeries(s)
	db.series++
	db.stats.series.Add(1)
	return s
}

// evict drops every point of blocks before first (hold the write lock).
func (db *DB) evict(first uint64) {
	if first <= db.evicted {
		return
	}
	db.evicted = first
	for name, m := range db.meas {
		for _, s := range m.series {
			for f, c := range s.cols {
				k, sb := c.evict(first)
				n := int64(k)
				db.points -= n
				db.stats.points.Add(-n)
				db.strBytes -= sb
				db.stats.strBytes.Add(-sb)
				if c.Stored() == 0 {
					delete(s.cols, f)
				}
			}
			if len(s.cols) == 0 {
				m.removeSeries(s)
				db.series--
				db.stats.series.Add(-1)
			}
		}
		if len(m.series) == 0 {
			delete(db.meas, name)
		}
	}
}

// drop forgets everything (the chronicle was deleted).
func (db *DB) drop() {
	db.mu.Lock()
	defer db.mu.Unlock()
	db.clear()
}

// clear forgets every point (hold the write lock).
func (db *DB) clear() {
	db.stats.points.Add(-db.points)
	db.stats.strBytes.Add(-db.strBytes)
	db.strBytes = 0
	db.stats.series.Add(-db.series)
	db.points, db.series = 0, 0
	db.meas = map[string]*Measurement{}
}

// Points and SeriesCount report the DB's size (hold a lock).
func (db *DB) Points() int64      { return db.points }
func (db *DB) SeriesCount() int64 { return db.series }

// NewDB returns an empty DB that is not fed by the log, with rollups of
// the given widths: the engine loads a subquery's results into one to run
// the outer query over them.
func NewDB(name string, rollups []time.Duration) *DB {
	widths := make([]int64, len(rollups))
	for i, w := range rollups {
		widths[i] = int64(w)
	}
	return newDB(name, widths, &stats{})
}

// Insert adds one point of measurement m (hold the write lock), after
// every point inserted before in log order.
func (db *DB) Insert(m string, tags map[string]string, t int64, fields map[string]event.Value) {
	db.apply(db.applied+1, []event.Event{{Story: m, Time: t, Tags: tags, Fields: fields}})
}
