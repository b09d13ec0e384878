locals {
  prefix = trim(var.prefix, "/")
  # APIs a new project needs for this stack: the function (gen2 runs on Cloud Run and is built by
  # Cloud Build into Artifact Registry), its logs, the bucket, the service accounts and the
  # project-level grants of the build account (Cloud Resource Manager).
  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "run.googleapis.com",
    "storage.googleapis.com",
  ])
}

# disable_on_destroy = false: a `terraform destroy` must not switch off APIs other things in the
# project may use.
resource "google_project_service" "apis" {
  for_each           = local.services
  service            = each.value
  disable_on_destroy = false
}

# Versioned, private model bucket. Published versions are immutable (make publish uses
# generation preconditions); noncurrent object versions are kept 30 days, then deleted.
resource "google_storage_bucket" "models" {
  #checkov:skip=CKV_GCP_62:No usage-log bucket is configured: it holds only model artifacts and source bundles (no user data), read by the runtime and build accounts and written by deployers; enable Data Access audit logs for Cloud Storage if an access trail is needed.
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

  depends_on = [google_project_service.apis]
}

# The function's own identity: it may read model objects from this bucket and nothing else.
resource "google_service_account" "function" {
  account_id   = "${var.function_name}-fn"
  display_name = "postergenre function runtime"
  depends_on   = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "function_reads_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.function.email}"
}

# The identity Cloud Build uses to build the function. Since Cloud Build's 2024 change a new
# project would build with the Compute Engine default account, which has no roles where the
# organisation policy iam.automaticIamGrantsForDefaultServiceAccounts is enforced. The roles are
# those Google documents for a custom build service account: write build logs, push the image
# to Artifact Registry (the gcf-artifacts repository Cloud Functions creates), read the source.
resource "google_service_account" "build" {
  account_id   = "${var.function_name}-build"
  display_name = "postergenre function build"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "build" {
  for_each = toset(["roles/logging.logWriter", "roles/artifactregistry.writer"])
  project  = var.project
  role     = each.value
  member   = "serviceAccount:${google_service_account.build.email}"
}

resource "google_storage_bucket_iam_member" "build_reads_source" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.build.email}"
}

# Source bundle: function/ only (no tests, no training code, no bundled model).
resource "google_storage_bucket_object" "source" {
  name   = "sources/function-${filemd5(var.source_zip)}.zip"
  bucket = google_storage_bucket.models.name
  source = var.source_zip
}

resource "google_cloudfunctions2_function" "predict" {
  #checkov:skip=CKV_GCP_124:Browsers and the mobile app call the HTTPS endpoint from the internet, so ingress cannot be internal-only; access is controlled by the invoker binding (allow_unauthenticated).
  name        = var.function_name
  location    = var.region
  description = "Movie-poster genre classifier"

  build_config {
    runtime         = "python311"
    entry_point     = "predict"
    service_account = google_service_account.build.id
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
    available_memory                 = "${var.memory_mb}Mi"
    available_cpu                    = var.cpu
    max_instance_request_concurrency = var.concurrency
    timeout_seconds                  = 60
    service_account_email            = google_service_account.function.email
    ingress_settings                 = "ALLOW_ALL"
    all_traffic_on_latest_revision   = true
    environment_variables = {
      MODEL_URI       = var.model_uri
      ALLOWED_ORIGINS = var.allowed_origins
      # The app sizes its limits from the instance it runs on: the same variables as above.
      MEMORY_MB    = tostring(var.memory_mb)
      THREADS      = tostring(var.concurrency)
      INTERPRETERS = tostring(var.concurrency)
    }
  }

  lifecycle {
    precondition {
      condition     = startswith(var.model_uri, "gs://${var.bucket}/${local.prefix == "" ? "" : "${local.prefix}/"}")
      error_message = "model_uri must be a version under gs://<bucket>/<prefix>/ of this deployment's bucket and prefix."
    }
  }

  depends_on = [
    google_storage_bucket_iam_member.function_reads_models,
    google_storage_bucket_iam_member.build_reads_source,
    google_project_iam_member.build,
  ]
}

# gen2 functions are invoked through their Cloud Run service.
resource "google_cloud_run_service_iam_member" "public_invoker" {
  #checkov:skip=CKV_GCP_102:Public HTTPS endpoint by design (web and mobile front ends call it without Google identities); allow_unauthenticated=false removes this binding.
  count    = var.allow_unauthenticated ? 1 : 0
  location = google_cloudfunctions2_function.predict.location
  service  = google_cloudfunctions2_function.predict.name
  role     = "roles/run.invoker"
  member   = "allUsers"
}
