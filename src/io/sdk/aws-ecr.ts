// The SDKs a run may never need are imported through modules like this one, loaded with import() where they are
// used: bundled, each becomes a chunk read only then (scripts/build.mjs). A package is not import()ed directly: a
// CommonJS package (the AWS and Google SDKs) would come out of a bundle's chunk as a default export only.
export {
  CreateRepositoryCommand,
  DescribeRepositoriesCommand,
  ECRClient,
  GetAuthorizationTokenCommand,
} from '@aws-sdk/client-ecr';
