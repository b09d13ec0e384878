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

provider "google" {
  project = var.project
  region  = var.region
}
