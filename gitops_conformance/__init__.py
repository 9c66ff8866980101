"""gitops-conformance: certify a GitOps setup on a real Kubernetes cluster."""
__version__ = "0.1.0"
