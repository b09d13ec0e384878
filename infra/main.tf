locals {
  prefix = trim(var.prefix, "/")
  # Service account ids are project-wide: a short hash of the region and bucket keeps two
  # deployments of one function name (another region or bucket) apart, within the 30-character
  # limit of account ids (function_name is cut to 16 characters here).
  account_stem = "${substr(var.function_name, 0, 16)}-${substr(sha1("${var.region}/${var.bucket}"), 0, 6)}"
  # APIs a new project needs for this stack: the function (gen2 runs on Cloud Run and is built by
  # Cloud Build into Artifact Registry), its logs, its alerts and dashboard (monitoring.tf), the
  # bucket, the service accounts and the project-level grant of the build account (Cloud
  # Resource Manager).
  services = toset([
    "artifactregistry.googleapis.com",
    "cloudbuild.googleapis.com",
    "cloudfunctions.googleapis.com",
    "cloudresourcemanager.googleapis.com",
    "iam.googleapis.com",
    "logging.googleapis.com",
    "monitoring.googleapis.com",
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
  account_id   = "${local.account_stem}-fn"
  display_name = "${var.function_name} function runtime (${var.region})"
  depends_on   = [google_project_service.apis]
}

resource "google_storage_bucket_iam_member" "function_reads_models" {
  bucket = google_storage_bucket.models.name
  role   = "roles/storage.objectViewer"
  member = "serviceAccount:${google_service_account.function.email}"
}

# The identity Cloud Build uses to build the function. Since Cloud Build's 2024 change a new
# project would build with the Compute Engine default account, which has no roles where the
# organisation policy iam.automaticIamGrantsForDefaultServiceAccounts is enforced.
# One role: Cloud Run Builder, the role Google documents for a user-specified build account of
# a function (write build logs, push and pull the image in the gcf-artifacts repository, and read
# the source that Cloud Functions copies into its own bucket gcf-v2-sources-PROJECT_NUMBER-REGION;
# the models bucket is never read by the build). See infra/README.md for why this and not a
# conditional objectViewer on that bucket.
resource "google_service_account" "build" {
  account_id   = "${local.account_stem}-build"
  display_name = "${var.function_name} function build (${var.region})"
  depends_on   = [google_project_service.apis]
}

resource "google_project_iam_member" "build" {
  project = var.project
  role    = "roles/run.builder"
  member  = "serviceAccount:${google_service_account.build.email}"
}

# IAM grants take time to reach every service that checks them (the provider's own builder
# example waits 60 s, and its acceptance test still failed half the time: provider issue 20571).
# The function is created only after this wait; it runs again only when a grant is replaced.
# make deploy applies the grants and this wait in its first, targeted step (infra/deploy.py) and
# retries a build that still fails on the build account's permissions.
resource "time_sleep" "iam_propagation" {
  create_duration = "${var.iam_propagation_seconds}s"
  triggers = {
    runtime = google_storage_bucket_iam_member.function_reads_models.id
    build   = google_project_iam_member.build.id
  }
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
      # Cloud Functions gen2 sets no project variable: the logs need it for their trace links.
      GOOGLE_CLOUD_PROJECT = var.project
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

  depends_on = [time_sleep.iam_propagation]
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
