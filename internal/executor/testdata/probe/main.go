// Command probe is a static test program for the container executor's
// tests: each mode tries one thing the sandbox allows or forbids and
// says what happened.
package main

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Println("usage: probe ACTION... (write, net=ADDR, read=PATH, mem, pids, sleep, child)")
		os.Exit(2)
	}
	for _, a := range os.Args[1:] {
		act(a)
	}
}

func act(a string) {
	arg := ""
	if i := strings.IndexByte(a, '='); i > 0 {
		a, arg = a[:i], a[i+1:]
	}
	switch a {
	case "write":
		if err := os.WriteFile("/out/hello.txt", []byte("hello from the container\n"), 0o644); err != nil {
			fmt.Println("write failed:", err)
			os.Exit(1)
		}
		if err := os.WriteFile("/elsewhere.txt", []byte("x"), 0o644); err == nil {
			fmt.Println("WROTE outside /out")
		} else {
			fmt.Println("root filesystem read-only")
		}
		fmt.Println("uid", os.Getuid(), "env", os.Getenv("GREETING"))
	case "net":
		c, err := net.DialTimeout("tcp", arg, 2*time.Second)
		if err == nil {
			c.Close()
			fmt.Println("CONNECTED", arg)
			return
		}
		fmt.Println("no network to", arg)
	case "read":
		b, err := os.ReadFile(arg)
		if err == nil {
			fmt.Println("READ", arg, len(b), "bytes")
			return
		}
		fmt.Println("cannot read", arg)
	case "mem":
		var keep [][]byte
		for i := 0; ; i++ {
			b := make([]byte, 16<<20)
			for j := range b {
				if j%4096 == 0 {
					b[j] = 1
				}
			}
			keep = append(keep, b)
			if i%8 == 0 {
				fmt.Println("allocated", (i+1)*16, "MiB")
			}
		}
	case "pids":
		var kids []*exec.Cmd
		for i := 0; i < 10000; i++ {
			c := exec.Command("/proc/self/exe", "child")
			if err := c.Start(); err != nil {
				fmt.Println("fork failed after", i, "children:", err)
				time.Sleep(time.Hour)
			}
			kids = append(kids, c)
		}
		fmt.Println("started", len(kids), "children")
	case "child", "sleep":
		time.Sleep(time.Hour)
	default:
		fmt.Println("unknown mode")
		os.Exit(2)
	}
}
