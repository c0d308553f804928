"""The cluster files in cluster/, rendered from one typed source (cluster/cluster.yaml, a ClusterSpec):
Ray cluster-launcher configs (AWS, GCP, on-prem) and KubeRay manifests (RayCluster, a RayJob per long
job, RayService), each checked offline before it is written. `interrvos cluster render` is this package;
docs/cluster.md says how to use the files."""
