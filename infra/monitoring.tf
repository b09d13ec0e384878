# Alerts and a dashboard on the function's Cloud Run metrics (a gen2 function is a Cloud Run
# service of the same name). What each alert means and what to do: infra/README.md, "Runbook".
#
# Thresholds follow from the function's own figures; infra/README.md ("Monitoring") gives the
# numbers and derivations:
# - 5xx share: the function answers 5xx only when it cannot serve (model unavailable, `busy`, a
#   bug), and the bench's throughput runs count their errors (tests/bench/results/bench-*.json).
# - Latency p95: well above the bench's slowest warm percentile (large JPEGs, same files), so only
#   queueing, CPU starvation or frequent cold starts reach it.
# - Latency p99: BUSY_WAIT_SECONDS (function/postergenre/config.py), how long a request waits for
#   decode memory before it gets 503 `busy`.
# - Memory: the decode budget (function/postergenre/budget.py) keeps an instance below MEMORY_MB
#   minus MARGIN_MB; above that share of the limit the margin is being eaten, and an instance
#   over the limit is killed with every request in flight.
locals {
  alert_5xx_share     = 0.01
  alert_p95_ms        = 1000
  busy_wait_seconds   = 5  # function/postergenre/config.py BUSY_WAIT_SECONDS default (tests/infra checks it)
  decode_margin_mb    = 48 # function/postergenre/budget.py MARGIN_MB (tests/infra checks it)
  alert_memory_share  = (var.memory_mb - local.decode_margin_mb) / var.memory_mb
  notification_emails = var.alert_email == "" ? [] : [var.alert_email]
  runbook             = "Runbook: infra/README.md in the postergenre repository, section \"Runbook\"."
}

# Optional: with alert_email empty the policies still exist (and show in the console), with no
# one notified.
resource "google_monitoring_notification_channel" "email" {
  count        = length(local.notification_emails)
  display_name = "${var.function_name} maintainers"
  type         = "email"
  labels = {
    email_address = local.notification_emails[count.index]
  }
  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "errors" {
  display_name          = "${var.function_name}: 5xx share above ${local.alert_5xx_share * 100}%"
  combiner              = "OR"
  notification_channels = google_monitoring_notification_channel.email[*].id

  conditions {
    display_name = "5xx responses / all responses, 5-minute windows"
    condition_threshold {
      filter     = "${local.service_filter} AND metric.type = \"run.googleapis.com/request_count\" AND metric.labels.response_code_class = \"5xx\""
      comparison = "COMPARISON_GT"
      # Any window over the threshold alerts: a model that cannot load answers 503 to every request.
      duration        = "0s"
      threshold_value = local.alert_5xx_share
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
      denominator_filter = "${local.service_filter} AND metric.type = \"run.googleapis.com/request_count\""
      denominator_aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_SUM"
      }
    }
  }

  documentation {
    content   = "More than ${local.alert_5xx_share * 100}% of the function's responses in 5 minutes were 5xx. ${local.runbook}"
    mime_type = "text/markdown"
  }
  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "latency" {
  display_name          = "${var.function_name}: latency p95 above ${local.alert_p95_ms} ms or p99 above ${local.busy_wait_seconds} s"
  combiner              = "OR"
  notification_channels = google_monitoring_notification_channel.email[*].id

  conditions {
    display_name = "p95 request latency, 5-minute windows, for 10 minutes"
    condition_threshold {
      filter          = "${local.service_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
      comparison      = "COMPARISON_GT"
      duration        = "600s"
      threshold_value = local.alert_p95_ms
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_95"
      }
    }
  }

  conditions {
    display_name = "p99 request latency above BUSY_WAIT_SECONDS, 5-minute windows"
    condition_threshold {
      filter          = "${local.service_filter} AND metric.type = \"run.googleapis.com/request_latencies\""
      comparison      = "COMPARISON_GT"
      duration        = "300s"
      threshold_value = local.busy_wait_seconds * 1000
      aggregations {
        alignment_period     = "300s"
        per_series_aligner   = "ALIGN_DELTA"
        cross_series_reducer = "REDUCE_PERCENTILE_99"
      }
    }
  }

  documentation {
    content   = "Requests are slow: p95 above ${local.alert_p95_ms} ms for 10 minutes, or p99 above ${local.busy_wait_seconds} s (BUSY_WAIT_SECONDS) for 5. ${local.runbook}"
    mime_type = "text/markdown"
  }
  depends_on = [google_project_service.apis]
}

resource "google_monitoring_alert_policy" "memory" {
  display_name          = "${var.function_name}: instance memory above ${floor(local.alert_memory_share * 100)}% of ${var.memory_mb} MiB"
  combiner              = "OR"
  notification_channels = google_monitoring_notification_channel.email[*].id

  conditions {
    display_name = "p99 container memory utilisation of the busiest revision, 1-minute windows"
    condition_threshold {
      filter          = "${local.service_filter} AND metric.type = \"run.googleapis.com/container/memory/utilizations\""
      comparison      = "COMPARISON_GT"
      duration        = "0s"
      threshold_value = local.alert_memory_share
      aggregations {
        alignment_period     = "60s"
        per_series_aligner   = "ALIGN_PERCENTILE_99"
        cross_series_reducer = "REDUCE_MAX"
      }
    }
  }

  documentation {
    content   = "An instance used more than MEMORY_MB minus the decode budget's ${local.decode_margin_mb} MiB margin (function/postergenre/budget.py): the memory model no longer holds, and the next large image may get the instance killed. ${local.runbook}"
    mime_type = "text/markdown"
  }
  depends_on = [google_project_service.apis]
}

# Requests by response class, latency percentiles, instances and memory (infra/dashboard.tf).
resource "google_monitoring_dashboard" "function" {
  dashboard_json = jsonencode(local.dashboard)
  depends_on     = [google_project_service.apis]
}
