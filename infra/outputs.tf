output "function_url" {
  description = "HTTPS endpoint of the function."
  value       = google_cloudfunctions2_function.predict.service_config[0].uri
}

output "bucket" {
  description = "Model bucket name."
  value       = google_storage_bucket.models.name
}

output "model_uri" {
  description = "Model version the function serves."
  value       = var.model_uri
}

output "source_object" {
  description = "Object name of the deployed source bundle (make rollback redeploys exactly this code)."
  value       = google_storage_bucket_object.source.name
}

output "alert_email" {
  description = "Address the alerts notify (empty: none); make deploy keeps it when ALERT_EMAIL= is not given."
  value       = var.alert_email
}
