"""The local testbed: a real Kubernetes control plane and the real Argo stack as host processes."""
