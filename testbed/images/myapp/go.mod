module gitops-conformance.local/myapp

go 1.22
