package agent

import (
	"context"
	"encoding/json"
	"math"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shirou/gopsutil/v4/common"
	"github.com/shirou/gopsutil/v4/cpu"
	"github.com/shirou/gopsutil/v4/disk"
	"github.com/shirou/gopsutil/v4/load"
	"github.com/shirou/gopsutil/v4/mem"
	"github.com/shirou/gopsutil/v4/net"
)

// The stories the agent writes: ChronoStream's three, then ours.
const (
	StoryCPU     = "cpu_usage"
	StoryMemory  = "memory_usage"
	StoryNetwork = "network_usage"
	StoryDisk    = "disk_usage"
	StoryDiskIO  = "disk_io"
	StoryLoad    = "load"
)

// Stories lists every story the agent writes.
var Stories = []string{StoryCPU, StoryMemory, StoryNetwork, StoryDisk, StoryDiskIO, StoryLoad}

// Filter selects names by shell patterns (path.Match): a name is kept if it
// matches an Include pattern (or Include is empty) and no Exclude pattern.
type Filter struct {
	Include, Exclude []string
}

// Match reports whether name is selected.
func (f Filter) Match(name string) bool {
	match := func(pats []string) bool {
		for _, p := range pats {
			if ok, _ := path.Match(p, name); ok {
				return true
			}
		}
		return false
	}
	return (len(f.Include) == 0 || match(f.Include)) && !match(f.Exclude)
}

// collector samples the host with gopsutil and keeps the previous counters
// for rates and CPU percentages.
type collector struct {
	ctx        context.Context // carries gopsutil's host paths
	hostRoot   string
	tags       map[string]string
	interfaces Filter
	mounts     Filter
	devices    Filter

	prevTime time.Time
	prevCPU  map[string]cpu.TimesStat
	prevNet  map[string]net.IOCountersStat
	prevDisk map[string]disk.IOCountersStat
	warned   map[string]bool
	warn     func(what string, err error)
}

// hostContext returns ctx carrying the host's /proc, /sys and root for
// gopsutil, as its HOST_PROC, HOST_SYS and HOST_ROOT variables would.
func hostContext(ctx context.Context, proc, sys, root string) context.Context {
	env := common.EnvMap{}
	if proc != "" {
		env[common.HostProcEnvKey] = proc
	}
	if sys != "" {
		env[common.HostSysEnvKey] = sys
	}
	if root != "" {
		env[common.HostRootEnvKey] = root
		if proc == "" {
			env[common.HostProcEnvKey] = filepath.Join(root, "proc")
		}
		if sys == "" {
			env[common.HostSysEnvKey] = filepath.Join(root, "sys")
		}
	}
	if len(env) == 0 {
		return ctx
	}
	return context.WithValue(ctx, common.EnvKey, env)
}

// sample returns one event per story item (core, interface, mount, device)
// at time now. The first call only records the counters that rates and
// CPU percentages are measured from, and returns nothing.
func (c *collector) sample(now time.Time) []Record {
	var out []Record
	first := c.prevTime.IsZero()
	dt := now.Sub(c.prevTime).Seconds()
	c.prevTime = now
	add := func(story string, e *eventBuilder) {
		out = append(out, Record{Story: story, Payload: e.bytes()})
	}

	// CPU: percentages of the time spent since the previous sample.
	cpus := map[string]cpu.TimesStat{}
	if per, err := cpu.TimesWithContext(c.ctx, true); err == nil {
		for _, t := range per {
			cpus[t.CPU] = t
		}
	} else {
		c.warn("cpu times per core", err)
	}
	if tot, err := cpu.TimesWithContext(c.ctx, false); err == nil && len(tot) == 1 {
		cpus["cpu-total"] = tot[0]
	} else if err != nil {
		c.warn("cpu times", err)
	}
	if !first {
		names := sortedKeys(cpus)
		// cpu-total first, then cores in numeric order.
		slices.SortFunc(names, func(a, b string) int { return cpuOrder(a) - cpuOrder(b) })
		for _, name := range names {
			cur, ok := c.prevCPU[name]
			if !ok {
				continue
			}
			if e, ok := cpuEvent(now, c.tags, name, cur, cpus[name]); ok {
				add(StoryCPU, e)
			}
		}
	}
	c.prevCPU = cpus

	// Memory: used is what is not available (MemAvailable), the figure
	// the kernel gives for what programs can still get without swapping.
	if vm, err := mem.VirtualMemoryWithContext(c.ctx); err == nil {
		if !first {
			e := newEvent(now, c.tags)
			used := vm.Total - min(vm.Available, vm.Total)
			e.uint("total", vm.Total)
			e.uint("available", vm.Available)
			e.uint("used", used)
			e.float("used_percent", percent(float64(used), float64(vm.Total)))
			e.uint("free", vm.Free)
			e.uint("buffers", vm.Buffers)
			e.uint("cached", vm.Cached)
			if sw, err := mem.SwapMemoryWithContext(c.ctx); err == nil {
				e.uint("swap_total", sw.Total)
				e.uint("swap_used", sw.Used)
				e.uint("swap_free", sw.Free)
			}
			add(StoryMemory, e)
		}
	} else {
		c.warn("memory", err)
	}

	// Network: counters per interface and their sum, with rates.
	if ifs, err := net.IOCountersWithContext(c.ctx, true); err == nil {
		cur := map[string]net.IOCountersStat{}
		var all net.IOCountersStat
		allPrevOK := !first
		var allPrev net.IOCountersStat
		for _, s := range ifs {
			if !c.interfaces.Match(s.Name) {
				continue
			}
			cur[s.Name] = s
			p, ok := c.prevNet[s.Name]
			if !ok {
				allPrevOK = false
			}
			addNet(&all, s)
			addNet(&allPrev, p)
		}
		if !first {
			for _, name := range sortedKeys(cur) {
				p, ok := c.prevNet[name]
				add(StoryNetwork, netEvent(now, c.tags, name, cur[name], p, ok, dt))
			}
			if len(cur) > 0 {
				add(StoryNetwork, netEvent(now, c.tags, "all", all, allPrev, allPrevOK, dt))
			}
		}
		c.prevNet = cur
	} else {
		c.warn("network counters", err)
	}

	// Disk usage of each selected mount.
	if !first {
		if parts, err := disk.PartitionsWithContext(c.ctx, false); err == nil {
			seen := map[string]bool{}
			for _, p := range parts {
				if seen[p.Mountpoint] || !c.mounts.Match(p.Mountpoint) {
					continue
				}
				seen[p.Mountpoint] = true
				u, err := disk.UsageWithContext(c.ctx, filepath.Join(c.hostRoot, p.Mountpoint))
				if err != nil || u.Total == 0 {
					continue
				}
				e := newEvent(now, c.tags, "path", p.Mountpoint, "device", p.Device, "fstype", p.Fstype)
				e.uint("total", u.Total)
				e.uint("used", u.Used)
				e.uint("free", u.Free)
				e.float("used_percent", clampPercent(u.UsedPercent))
				e.uint("inodes_total", u.InodesTotal)
				e.uint("inodes_used", u.InodesUsed)
				e.uint("inodes_free", u.InodesFree)
				add(StoryDisk, e)
			}
		} else {
			c.warn("disk partitions", err)
		}
	}

	// Disk I/O per device, with rates.
	if io, err := disk.IOCountersWithContext(c.ctx); err == nil {
		cur := map[string]disk.IOCountersStat{}
		for name, s := range io {
			if c.devices.Match(name) {
				cur[name] = s
			}
		}
		if !first {
			for _, name := range sortedKeys(cur) {
				s := cur[name]
				p, ok := c.prevDisk[name]
				e := newEvent(now, c.tags, "name", name)
				e.uint("read_bytes", s.ReadBytes)
				e.uint("write_bytes", s.WriteBytes)
				e.uint("reads", s.ReadCount)
				e.uint("writes", s.WriteCount)
				e.uint("read_time_ms", s.ReadTime)
				e.uint("write_time_ms", s.WriteTime)
				e.uint("io_time_ms", s.IoTime)
				e.uint("iops_in_progress", s.IopsInProgress)
				if ok && dt > 0 {
					e.rate("read_bytes_per_sec", s.ReadBytes, p.ReadBytes, dt)
					e.rate("write_bytes_per_sec", s.WriteBytes, p.WriteBytes, dt)
					e.rate("reads_per_sec", s.ReadCount, p.ReadCount, dt)
					e.rate("writes_per_sec", s.WriteCount, p.WriteCount, dt)
					if s.IoTime >= p.IoTime {
						e.float("util_percent", clampPercent(float64(s.IoTime-p.IoTime)/(dt*10)))
					}
				}
				add(StoryDiskIO, e)
			}
		}
		c.prevDisk = cur
	} else {
		c.warn("disk I/O counters", err)
	}

	// Load averages and run queue.
	if !first {
		if avg, err := load.AvgWithContext(c.ctx); err == nil {
			e := newEvent(now, c.tags)
			e.float("load1", avg.Load1)
			e.float("load5", avg.Load5)
			e.float("load15", avg.Load15)
			if n, err := cpu.CountsWithContext(c.ctx, true); err == nil {
				e.uint("n_cpus", uint64(n))
			}
			if m, err := load.MiscWithContext(c.ctx); err == nil {
				e.uint("procs_running", uint64(max(m.ProcsRunning, 0)))
				e.uint("procs_blocked", uint64(max(m.ProcsBlocked, 0)))
				e.uint("procs_total", uint64(max(m.ProcsTotal, 0)))
			}
			add(StoryLoad, e)
		} else {
			c.warn("load averages", err)
		}
	}
	return out
}

func cpuOrder(name string) int {
	if name == "cpu-total" {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimPrefix(name, "cpu"))
	if err != nil {
		return math.MaxInt32
	}
	return n
}

// cpuEvent gives each state's share of the time between two samples, in
// percent; usage is everything but idle and iowait (ChronoStream's "busy").
func cpuEvent(now time.Time, tags map[string]string, name string, prev, cur cpu.TimesStat) (*eventBuilder, bool) {
	d := func(a, b float64) float64 { return max(b-a, 0) }
	// Guest time is already counted in user and nice (Linux).
	parts := []struct {
		name string
		v    float64
	}{
		{"user", d(prev.User-prev.Guest, cur.User-cur.Guest)},
		{"system", d(prev.System, cur.System)},
		{"idle", d(prev.Idle, cur.Idle)},
		{"iowait", d(prev.Iowait, cur.Iowait)},
		{"nice", d(prev.Nice-prev.GuestNice, cur.Nice-cur.GuestNice)},
		{"irq", d(prev.Irq, cur.Irq)},
		{"softirq", d(prev.Softirq, cur.Softirq)},
		{"steal", d(prev.Steal, cur.Steal)},
		{"guest", d(prev.Guest+prev.GuestNice, cur.Guest+cur.GuestNice)},
	}
	var total float64
	for _, p := range parts[:8] {
		total += p.v
	}
	if total <= 0 {
		return nil, false
	}
	e := newEvent(now, tags, "cpu", name)
	idle := parts[2].v + parts[3].v
	e.float("usage", clampPercent(100*(total-idle)/total))
	for _, p := range parts {
		e.float(p.name, clampPercent(100*p.v/total))
	}
	return e, true
}

func addNet(a *net.IOCountersStat, s net.IOCountersStat) {
	a.BytesRecv += s.BytesRecv
	a.BytesSent += s.BytesSent
	a.PacketsRecv += s.PacketsRecv
	a.PacketsSent += s.PacketsSent
	a.Errin += s.Errin
	a.Errout += s.Errout
	a.Dropin += s.Dropin
	a.Dropout += s.Dropout
}

func netEvent(now time.Time, tags map[string]string, name string, s, p net.IOCountersStat, havePrev bool, dt float64) *eventBuilder {
	e := newEvent(now, tags, "interface", name)
	e.uint("bytes_recv", s.BytesRecv)
	e.uint("bytes_sent", s.BytesSent)
	e.uint("packets_recv", s.PacketsRecv)
	e.uint("packets_sent", s.PacketsSent)
	e.uint("err_in", s.Errin)
	e.uint("err_out", s.Errout)
	e.uint("drop_in", s.Dropin)
	e.uint("drop_out", s.Dropout)
	if havePrev && dt > 0 {
		e.rate("bytes_recv_per_sec", s.BytesRecv, p.BytesRecv, dt)
		e.rate("bytes_sent_per_sec", s.BytesSent, p.BytesSent, dt)
		e.rate("packets_recv_per_sec", s.PacketsRecv, p.PacketsRecv, dt)
		e.rate("packets_sent_per_sec", s.PacketsSent, p.PacketsSent, dt)
	}
	return e
}

func percent(part, whole float64) float64 {
	if whole <= 0 {
		return 0
	}
	return clampPercent(100 * part / whole)
}

func clampPercent(v float64) float64 {
	if math.IsNaN(v) {
		return 0
	}
	return min(max(v, 0), 100)
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// eventBuilder writes one metric event as a JSON object: time (Unix ns),
// kind, a tags object, then typed members. Floats always carry a fraction
// or an exponent and counters never do, so each field keeps its type
// (float or integer) in every event, whatever its value.
type eventBuilder struct{ b []byte }

func newEvent(t time.Time, tags map[string]string, kv ...string) *eventBuilder {
	e := &eventBuilder{b: make([]byte, 0, 512)}
	e.b = append(e.b, `{"time":`...)
	e.b = strconv.AppendInt(e.b, t.UnixNano(), 10)
	e.b = append(e.b, `,"kind":"metric","tags":{`...)
	all := make(map[string]string, len(tags)+len(kv)/2)
	for k, v := range tags {
		all[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		all[kv[i]] = kv[i+1]
	}
	for i, k := range sortedKeys(all) {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = appendString(e.b, k)
		e.b = append(e.b, ':')
		e.b = appendString(e.b, all[k])
	}
	e.b = append(e.b, '}')
	return e
}

func appendString(b []byte, s string) []byte {
	q, _ := json.Marshal(s)
	return append(b, q...)
}

func (e *eventBuilder) key(k string) {
	e.b = append(e.b, ',')
	e.b = appendString(e.b, k)
	e.b = append(e.b, ':')
}

func (e *eventBuilder) uint(k string, v uint64) {
	e.key(k)
	e.b = strconv.AppendUint(e.b, v, 10)
}

func (e *eventBuilder) float(k string, v float64) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return
	}
	e.key(k)
	start := len(e.b)
	e.b = strconv.AppendFloat(e.b, v, 'g', -1, 64)
	if !strings.ContainsAny(string(e.b[start:]), ".e") {
		e.b = append(e.b, ".0"...)
	}
}

// rate is the per-second increase of a counter; a counter that went
// backwards (reset, wrap) gives no rate rather than a negative one.
func (e *eventBuilder) rate(k string, cur, prev uint64, dt float64) {
	if cur < prev {
		return
	}
	e.float(k, float64(cur-prev)/dt)
}

func (e *eventBuilder) bytes() []byte { return append(e.b, '}') }
