# The dashboard's layout, as plain locals (no resources), so that tests/infra can render it with
# Terraform itself and check it against Cloud Monitoring's Dashboard schema offline.
# Tile positions of 0 are left out: Cloud Monitoring drops zero values from the dashboard it returns,
# and the provider suppresses only fields the API adds (resource_monitoring_dashboard.go; provider
# issue 24650), so a 0 written here would plan an update on every apply. Absent means 0.
# The filters name the region too: the same function name may be deployed in another region.
locals {
  service_filter = "resource.type = \"cloud_run_revision\" AND resource.labels.service_name = \"${var.function_name}\" AND resource.labels.location = \"${var.region}\""

  _requests  = "${local.service_filter} AND metric.type = \"run.googleapis.com/request_count\""
  _latencies = "${local.service_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
  _instances = "${local.service_filter} AND metric.type = \"run.googleapis.com/container/instance_count\""
  _memory    = "${local.service_filter} AND metric.type = \"run.googleapis.com/container/memory/utilizations\""

  dashboard = {
    displayName = "${var.function_name} (${var.region})"
    mosaicLayout = {
      columns = 48
      tiles = [
        {
          width = 24, height = 16
          widget = {
            title = "Requests per second by response class"
            xyChart = {
              dataSets = [{
                plotType       = "STACKED_BAR"
                legendTemplate = "$${metric.labels.response_code_class}"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = local._requests
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_RATE"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["metric.label.response_code_class"]
                    }
                  }
                }
              }]
              yAxis = { label = "requests/s", scale = "LINEAR" }
            }
          }
        },
        {
          xPos = 24, width = 24, height = 16
          widget = {
            title = "Request latency p50 / p95 / p99 (ms); lines at the alert thresholds"
            xyChart = {
              dataSets = [for p in [50, 95, 99] : {
                plotType       = "LINE"
                legendTemplate = "p${p}"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = local._latencies
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_DELTA"
                      crossSeriesReducer = "REDUCE_PERCENTILE_${p}"
                    }
                  }
                }
              }]
              thresholds = [{ value = local.alert_p95_ms, label = "p95 alert" }, { value = local.busy_wait_seconds * 1000, label = "p99 alert" }]
              yAxis      = { label = "ms", scale = "LOG10" }
            }
          }
        },
        {
          yPos = 16, width = 24, height = 16
          widget = {
            title = "Instances (active, idle); line at max_instances"
            xyChart = {
              dataSets = [{
                plotType       = "STACKED_AREA"
                legendTemplate = "$${metric.labels.state}"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = local._instances
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_MAX"
                      crossSeriesReducer = "REDUCE_SUM"
                      groupByFields      = ["metric.label.state"]
                    }
                  }
                }
              }]
              thresholds = [{ value = var.max_instances, label = "max_instances" }]
              yAxis      = { label = "instances", scale = "LINEAR" }
            }
          }
        },
        {
          xPos = 24, yPos = 16, width = 24, height = 16
          widget = {
            title = "Memory utilisation of ${var.memory_mb} MiB, p50 / p99 of the busiest revision; line at the alert"
            xyChart = {
              dataSets = [for p in [50, 99] : {
                plotType       = "LINE"
                legendTemplate = "p${p}"
                timeSeriesQuery = {
                  timeSeriesFilter = {
                    filter = local._memory
                    aggregation = {
                      alignmentPeriod    = "60s"
                      perSeriesAligner   = "ALIGN_PERCENTILE_${p}"
                      crossSeriesReducer = "REDUCE_MAX"
                    }
                  }
                }
              }]
              thresholds = [{ value = local.alert_memory_share, label = "memory alert" }]
              yAxis      = { label = "share of the limit", scale = "LINEAR" }
            }
          }
        },
      ]
    }
  }
}
