"""The procedure's steps performed the Flux way (`--engine flux`), one module a step, in the
procedure's order: step2_kustomizations (GitRepository, Kustomization, Receiver),
step3_app_of_apps (Kustomizations of Kustomizations), step3_tenancy (multi-tenancy: Step 3's
access control), step6_notifications (Providers and Alerts)."""
