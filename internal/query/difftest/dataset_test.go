package difftest

import (
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"
)

// The dataset written to both servers. Every line carries an explicit
// nanosecond timestamp and no series has two points at one time (InfluxDB
// overwrites such a point, a log keeps both: not what this test compares).
// The data lies in the three hours before the last full hour, so queries
// relative to now() that reach further back see all of it.

const (
	dbMain  = "telegraf" // TSBS-like cpu, sensors, web.requests
	dbAgent = "agent"    // the agent's stories, as `chronostream agent -r agent` writes them
	dbOther = "other"    // a second database with a cpu of its own
)

// databases in name order: InfluxDB lists them in creation order.
var databases = []string{dbAgent, dbOther, dbMain}

// dataset is the generated data: line-protocol bodies per database, and how
// many points carry each (measurement, field), to tell when a server has
// taken everything in.
type dataset struct {
	start, end time.Time           // [start, end): every point's time
	bodies     map[string][]string // db → request bodies, in write order
	counts     map[string]int      // "db measurement field" → points with that field
}

func (d *dataset) add(db string, lines []string, batch int) {
	for len(lines) > 0 {
		n := min(batch, len(lines))
		d.bodies[db] = append(d.bodies[db], strings.Join(lines[:n], "\n")+"\n")
		lines = lines[n:]
	}
}

func (d *dataset) count(db, measurement string, fields ...string) {
	for _, f := range fields {
		d.counts[db+" "+measurement+" "+f]++
	}
}

// newDataset generates the data for the three hours before end.
func newDataset(end time.Time) *dataset {
	d := &dataset{start: end.Add(-3 * time.Hour), end: end, bodies: map[string][]string{}, counts: map[string]int{}}
	r := rand.New(rand.NewPCG(8, 1))
	d.add(dbMain, d.cpu(r), 1000)
	d.add(dbMain, d.sensors(r), 250)
	d.add(dbMain, d.webRequests(r), 500)
	d.add(dbAgent, d.agent(r), 1000)
	d.add(dbOther, d.other(r), 500)
	return d
}

var cpuFields = []string{
	"usage_user", "usage_system", "usage_idle", "usage_nice", "usage_iowait",
	"usage_irq", "usage_softirq", "usage_steal", "usage_guest", "usage_guest_nice",
}

// cpu is TSBS's cpu-only shape: five hosts with ten tags, ten float fields
// every 10 s. host_4 is silent for 20 minutes (a gap for fill()).
func (d *dataset) cpu(r *rand.Rand) []string {
	regions := []string{"us-east-1", "us-west-2", "eu-west-1"}
	var lines []string
	levels := make([]float64, 5*len(cpuFields))
	for i := range levels {
		levels[i] = r.Float64() * 100
	}
	for ts := d.start; ts.Before(d.end); ts = ts.Add(10 * time.Second) {
		for h := range 5 {
			if h == 4 && ts.Sub(d.start) >= time.Hour && ts.Sub(d.start) < 80*time.Minute {
				continue
			}
			var b strings.Builder
			reg := regions[h%len(regions)]
			fmt.Fprintf(&b, "cpu,hostname=host_%d,region=%s,datacenter=%sa,rack=%d,os=Ubuntu16.%02d,arch=x%d,team=%s,service=%d,service_version=%d,service_environment=%s ",
				h, reg, reg, h*7%10, 4+h%2*6, 64-h%2*54, []string{"SF", "NYC", "LON"}[h%3], h%3, h%2, []string{"production", "staging"}[h%2])
			for f, name := range cpuFields {
				v := &levels[h*len(cpuFields)+f]
				*v = min(100, max(0, *v+r.NormFloat64()*3))
				if f > 0 {
					b.WriteByte(',')
				}
				b.WriteString(name)
				b.WriteByte('=')
				b.WriteString(strconv.FormatFloat(math.Round(*v*100)/100, 'f', -1, 64))
			}
			fmt.Fprintf(&b, " %d", ts.UnixNano())
			lines = append(lines, b.String())
			d.count(dbMain, "cpu", cpuFields...)
		}
	}
	return lines
}

// sensors mixes every field type (float, integer, boolean, string), sparse
// fields, a series without one of the tags, tag values that need escaping,
// full-precision floats, and points written out of time order.
func (d *dataset) sensors(r *rand.Rand) []string {
	type series struct{ tags, room string }
	all := []series{
		{`room=kitchen,floor=1`, "kitchen"},
		{`room=living\ room,floor=1`, "living room"},
		{`room=a\,b\=c,floor=2`, "a,b=c"},
		{`room=zürich,floor=2`, "zürich"},
		{`room=o'brien`, "o'brien"}, // no floor tag
	}
	var lines []string
	for si, s := range all {
		temp := 18 + float64(si)
		for i, ts := 0, d.start.Add(time.Duration(si)*time.Second); ts.Before(d.end); i, ts = i+1, ts.Add(time.Minute) {
			temp += r.NormFloat64() / 3
			fields := []string{"temp=" + strconv.FormatFloat(temp, 'g', -1, 64)}
			names := []string{"temp"}
			if i%3 != 0 { // sparse: every third point has no humidity
				fields = append(fields, "humidity="+strconv.FormatFloat(40+r.Float64()*20, 'f', 3, 64))
				names = append(names, "humidity")
			}
			fields = append(fields, fmt.Sprintf("events=%di", r.IntN(50)-5), fmt.Sprintf("ok=%t", r.IntN(4) != 0))
			names = append(names, "events", "ok")
			if i%5 == 0 { // the status is reported now and then
				status := []string{"ok", "warn", `said "hi"`, `back\slash`, "two words"}[r.IntN(5)]
				status = strings.ReplaceAll(strings.ReplaceAll(status, `\`, `\\`), `"`, `\"`)
				fields = append(fields, `status="`+status+`"`)
				names = append(names, "status")
			}
			lines = append(lines, fmt.Sprintf("sensors,%s %s %d", s.tags, strings.Join(fields, ","), ts.UnixNano()))
			d.count(dbMain, "sensors", names...)
		}
	}
	r.Shuffle(len(lines), func(i, j int) { lines[i], lines[j] = lines[j], lines[i] })
	return lines
}

// webRequests is a measurement whose name has a dot, at irregular times.
func (d *dataset) webRequests(r *rand.Rand) []string {
	var lines []string
	methods := []string{"GET", "POST"}
	paths := []string{"/", "/api/v1/query", "/login"}
	for ts := d.start.Add(30 * time.Minute); ts.Before(d.end); ts = ts.Add(time.Duration(1+r.IntN(30)) * time.Second) {
		lines = append(lines, fmt.Sprintf("web.requests,method=%s,path=%s latency_ms=%.2f,status=%di,bytes=%di %d",
			methods[r.IntN(2)], paths[r.IntN(3)], r.ExpFloat64()*20, []int{200, 200, 200, 404, 500}[r.IntN(5)], r.IntN(1<<20), ts.UnixNano()))
		d.count(dbMain, "web.requests", "latency_ms", "status", "bytes")
	}
	return lines
}

// agent writes what `chronostream agent` sends (docs/agent.md): cpu_usage
// per CPU and the total, memory_usage, network_usage per interface and
// "all", with the host tag; counters as integers, rates and percents as floats.
func (d *dataset) agent(r *rand.Rand) []string {
	var lines []string
	hosts := []string{"web-1", "db-1"}
	var rx, tx [2][2]int64
	for ts := d.start; ts.Before(d.end); ts = ts.Add(10 * time.Second) {
		t := ts.UnixNano()
		for hi, h := range hosts {
			for _, c := range []string{"cpu-total", "cpu0", "cpu1"} {
				user, system, iowait := r.Float64()*60, r.Float64()*20, r.Float64()*5
				idle := 100 - user - system - iowait
				lines = append(lines, fmt.Sprintf("cpu_usage,cpu=%s,host=%s usage=%.3f,user=%.3f,system=%.3f,idle=%.3f,iowait=%.3f,nice=0,irq=0,softirq=%.3f,steal=0,guest=0 %d",
					c, h, user+system, user, system, idle, iowait, r.Float64(), t))
				d.count(dbAgent, "cpu_usage", "usage", "user", "system", "idle", "iowait", "nice", "irq", "softirq", "steal", "guest")
			}
			total := int64(8<<30) * int64(hi+1)
			avail := total/4 + r.Int64N(total/2)
			lines = append(lines, fmt.Sprintf("memory_usage,host=%s total=%di,available=%di,used=%di,used_percent=%.4f,free=%di,buffers=%di,cached=%di,swap_total=%di,swap_used=%di,swap_free=%di %d",
				h, total, avail, total-avail, float64(total-avail)*100/float64(total), avail/2, r.Int64N(1<<28), r.Int64N(1<<30), int64(2<<30), int64(0), int64(2<<30), t))
			d.count(dbAgent, "memory_usage", "total", "available", "used", "used_percent")
			var sumRx, sumTx int64
			for ii, iface := range []string{"eth0", "eth1"} {
				drx, dtx := r.Int64N(1<<20), r.Int64N(1<<18)
				if ts.Sub(d.start) == 90*time.Minute && ii == 1 { // a counter reset
					rx[hi][ii], tx[hi][ii] = 0, 0
				}
				rx[hi][ii] += drx
				tx[hi][ii] += dtx
				sumRx += rx[hi][ii]
				sumTx += tx[hi][ii]
				lines = append(lines, fmt.Sprintf("network_usage,host=%s,interface=%s bytes_recv=%di,bytes_sent=%di,packets_recv=%di,packets_sent=%di,err_in=0i,err_out=0i,drop_in=0i,drop_out=0i,bytes_recv_per_sec=%g,bytes_sent_per_sec=%g %d",
					h, iface, rx[hi][ii], tx[hi][ii], rx[hi][ii]/1000, tx[hi][ii]/1000, float64(drx)/10, float64(dtx)/10, t))
				d.count(dbAgent, "network_usage", "bytes_recv", "bytes_sent", "bytes_recv_per_sec")
			}
			lines = append(lines, fmt.Sprintf("network_usage,host=%s,interface=all bytes_recv=%di,bytes_sent=%di %d", h, sumRx, sumTx, t))
			d.count(dbAgent, "network_usage", "bytes_recv", "bytes_sent")
		}
	}
	return lines
}

// other is the second database: a cpu of its own (other hosts, one field)
// and a log-like measurement with string fields.
func (d *dataset) other(r *rand.Rand) []string {
	var lines []string
	for ts := d.start; ts.Before(d.end); ts = ts.Add(time.Minute) {
		for h := range 2 {
			lines = append(lines, fmt.Sprintf("cpu,hostname=other_%d usage_user=%d %d", h, r.IntN(100), ts.UnixNano()))
			d.count(dbOther, "cpu", "usage_user")
		}
		if ts.Minute()%7 == 0 {
			lines = append(lines, fmt.Sprintf(`logs,level=%s msg="job %d done",code=%di %d`, []string{"info", "error"}[r.IntN(2)], r.IntN(1000), r.IntN(3), ts.UnixNano()))
			d.count(dbOther, "logs", "msg", "code")
		}
		// disk: a tag and a field of one name, tag values whose escaped
		// and unescaped orders differ ("h 1" < "h2", `h\ 1` > "h2"), and
		// two series at each time.
		if ts.Minute()%10 == 0 {
			for _, h := range []string{`h\ 1,path=/var`, `h2,path=/home`} {
				lines = append(lines, fmt.Sprintf(`disk,host=%s path="%s/x",used=%di %d`, h, h[strings.IndexByte(h, '=')+1:], r.IntN(1000), ts.UnixNano()))
				d.count(dbOther, "disk", "used", "path")
			}
		}
	}
	return lines
}
