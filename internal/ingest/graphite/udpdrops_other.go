//go:build !linux

package graphite

import "net"

// udpDropsSupported: the kernel's count of dropped datagrams is read on
// Linux only; elsewhere UDP overflow is not counted.
const udpDropsSupported = false

func udpSocketInode(*net.UDPConn) uint64 { return 0 }

func udpDrops(uint64) (uint64, bool) { return 0, false }
