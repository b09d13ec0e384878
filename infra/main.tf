locals {
  model_uri = var.model_uri != "" ? var.model_uri : "gs://${var.bucket}/models/${var.model_version}/"
}

# Versioned, private model bucket. Published versions are immutable (make publish uses
# generation preconditions); noncurrent object versions are kept 30 days, then deleted.
resource "google_storage_bucket" "models" {
  #checkov:skip=CKV_GCP_62:Access is audited with Cloud Audit Logs data-access logs, not legacy bucket access logs.
  name                        = var.bucket
  location                    = var.region
  uniform_bucket_level_access = true
  public_access_prevention    = "enforced"
  force_destroy               = false

  versioning {
    enabled = true
  }

  lifecycle_rule {
    condition {
      days_since_noncurrent_time = 30
      with_state                 = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }

  lifecycle_rule {
    condition {
      num_newer_versions = 3
      with_state         = "ARCHIVED"
    }
    action {
      type = "Delete"
    }
  }
}

# The function's own identity: it may read model objects from this bucket and nothing else.
resource "google_service_account" "function" {
  account_id   = "${var.function_name}-fn"
  display_name = "postergenre function runtime"
}

resource "google_storage_bucket_iam_member" "function_reads_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.function.email}"
}

# Source bundle: function/ only (no tests, no training code, no bundled model).
resource "google_storage_bucket_object" "source" {
  name   = "sources/function-${filemd5(var.source_zip)}.zip"
  bucket = google_storage_bucket.models.name
  source = var.source_zip
}

resource "google_cloudfunctions2_function" "predict" {
  #checkov:skip=CKV_GCP_124:Public HTTPS endpoint by design (browsers and the mobile app call it directly); ingress cannot be internal-only.
  name        = var.function_name
  location    = var.region
  description = "Movie-poster genre classifier"

  build_config {
    runtime     = "python311"
    entry_point = "predict"
    source {
      storage_source {
        bucket = google_storage_bucket.models.name
        object = google_storage_bucket_object.source.name
      }
    }
  }

  service_config {
    min_instance_count               = 0
    max_instance_count               = var.max_instances
    available_memory                 = var.memory
    available_cpu                    = var.cpu
    max_instance_request_concurrency = var.concurrency
    timeout_seconds                  = 60
    service_account_email            = google_service_account.function.email
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables = {
      MODEL_URI       = local.model_uri
      ALLOWED_ORIGINS = var.allowed_origins
      THREADS         = tostring(var.concurrency)
      INTERPRETERS    = tostring(var.concurrency)
    }
  }

  depends_on = [google_storage_bucket_iam_member.function_reads_models]
}

# gen2 functions are invoked through their Cloud Run service.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:Public HTTPS endpoint by design (web and mobile front ends call it); set allow_unauthenticated=false to remove.
  count    = var.allow_unauthenticated ? 1 : 0
  location = google_cloudfunctions2_function.predict.location
  service  = google_cloudfunctions2_function.predict.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
