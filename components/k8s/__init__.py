"""The Kubernetes layer: what every region's cluster runs, whatever cloud it is on."""
