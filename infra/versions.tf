terraform {
  required_version = ">= 1.9.0" # validations that compare variables (variables.tf) need 1.9

  # Shared state in its own versioned bucket (make bootstrap creates it); the bucket and prefix
  # are passed by `terraform init -backend-config=...` (see infra/deploy.py).
  backend "gcs" {}

  # Exact versions: tests/infra checks every argument against these providers' schemas
  # (@cdktf/provider-google 14.13.0 and @cdktf/provider-time 11.0.0 are generated from them).
  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "= 6.14.0"
    }
    time = {
      source  = "hashicorp/time"
      version = "= 0.13.1"
    }
  }
}

# API calls are billed to (and their quota counted in) the deployment's project: with user
# credentials (gcloud auth application-default login) the provider would otherwise send no quota
# project, because provider 6.x does not read ADC's quota_project_id (provider issue 20459;
# magic-modules PR 12411). The deployer needs serviceusage.services.use on the project
# (roles/serviceusage.serviceUsageConsumer, included in Service Usage Admin and Owner).
provider "google" {
  project               = var.project
  region                = var.region
  billing_project       = var.project
  user_project_override = true
}
