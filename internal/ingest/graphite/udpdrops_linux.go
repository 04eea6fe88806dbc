package graphite

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"syscall"
)

// udpDropsSupported: the kernel's count of datagrams dropped on a socket
// (its receive buffer full, mostly) is read from /proc/net/udp{,6}.
const udpDropsSupported = true

// udpSocketInode returns the inode of c's socket, which names it in
// /proc/net/udp; 0 if unknown.
func udpSocketInode(c *net.UDPConn) uint64 {
	rc, err := c.SyscallConn()
	if err != nil {
		return 0
	}
	var ino uint64
	_ = rc.Control(func(fd uintptr) {
		var st syscall.Stat_t
		if syscall.Fstat(int(fd), &st) == nil {
			ino = st.Ino
		}
	})
	return ino
}

// udpDrops returns the drops column of the socket with inode ino in
// /proc/net/udp or /proc/net/udp6.
func udpDrops(ino uint64) (uint64, bool) {
	want := []byte(strconv.FormatUint(ino, 10))
	for _, name := range []string{"/proc/net/udp", "/proc/net/udp6"} {
		b, err := os.ReadFile(name)
		if err != nil {
			continue
		}
		// "sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops"
		for _, line := range bytes.Split(b, []byte{'\n'}) {
			f := bytes.Fields(line)
			if len(f) < 13 || !bytes.Equal(f[9], want) {
				continue
			}
			d, err := strconv.ParseUint(string(f[12]), 10, 64)
			return d, err == nil
		}
	}
	return 0, false
}
