// Loaded with import() when an ECR Public registry is logged in to (see aws-ecr.ts).
export { ECRPUBLICClient, GetAuthorizationTokenCommand } from '@aws-sdk/client-ecr-public';
