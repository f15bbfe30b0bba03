"""The control plane: Pods coming and going (`churn`), and the kube-proxy sync loop that
programs every node's rules after them (`syncloop`); `couple` gives the data plane each
node's rules over time. It runs before the data plane of a replication: churn and
programming do not depend on the requests."""
