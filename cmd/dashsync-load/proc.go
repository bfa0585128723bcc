package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// clockTicks is USER_HZ, the unit of utime and stime in /proc/PID/stat: 100 on
// every Linux architecture Go supports (the kernel fixes it for user space).
const clockTicks = 100

// procSample is a server's resident memory and CPU time at one moment.
type procSample struct {
	RSS int64   // bytes (VmRSS)
	CPU float64 // seconds, user + system
}

// readProc reads /proc/PID/status and /proc/PID/stat.
func readProc(pid int) (procSample, error) {
	var s procSample
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, fmt.Errorf("server pid %d: %w", pid, err)
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	found := false
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest) // "12345 kB"
		if len(f) != 2 || f[1] != "kB" {
			return s, fmt.Errorf("server pid %d: unexpected VmRSS line %q", pid, sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return s, fmt.Errorf("server pid %d: VmRSS: %w", pid, err)
		}
		s.RSS, found = kb*1024, true
		break
	}
	if !found {
		return s, fmt.Errorf("server pid %d: no VmRSS in /proc/%d/status (a zombie?)", pid, pid)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, fmt.Errorf("server pid %d: %w", pid, err)
	}
	// The command name (field 2) is in parentheses and may hold spaces; fields 14 and
	// 15 (utime, stime) are the 12th and 13th after the last ')'.
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return s, fmt.Errorf("server pid %d: unreadable /proc/%d/stat", pid, pid)
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 13 {
		return s, fmt.Errorf("server pid %d: short /proc/%d/stat", pid, pid)
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("server pid %d: unreadable utime/stime in /proc/%d/stat", pid, pid)
	}
	s.CPU = float64(ut+st) / clockTicks
	return s, nil
}

// loadAvg is the machine's 1-minute load average, or -1 when unknown.
func loadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, err := strconv.ParseFloat(f[0], 64)
	if err != nil {
		return -1
	}
	return v
}
