// Loaded with import() when a Google registry (GCR, Artifact Registry) is logged in to (see aws-ecr.ts).
export { ExternalAccountClient, GoogleAuth, JWT } from 'google-auth-library';
