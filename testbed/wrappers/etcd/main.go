// etcd as a library call: etcdmain is what the upstream etcd binary runs, and
// using it from a wrapper lets the Go module proxy build etcd v3.6 (Debian's
// etcd 3.4 is below the Kubernetes minimum).
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
