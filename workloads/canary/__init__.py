"""The canary analysis controller: one per region, judges candidate versions on live metrics."""
