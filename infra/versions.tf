terraform {
  required_version = ">= 1.5.0"

  # Shared state in its own versioned bucket (make bootstrap creates it); the bucket and prefix
  # are passed by `terraform init -backend-config=...` (see infra/deploy.py).
  backend "gcs" {}

  required_providers {
    google = {
      source  = "hashicorp/google"
      version = "= 6.14.0"
    }
  }
}

provider "google" {
  project = var.project
  region  = var.region
}
