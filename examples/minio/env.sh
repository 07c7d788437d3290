# Environment for git-remote-kmscrypt against the MinIO of docker-compose.yml and a local KMS.
# Source it, do not run it:   . examples/minio/env.sh
#
# Ports can be changed before sourcing: MINIO_PORT (default 9000), LOCAL_KMS_PORT (default 4599).

MINIO_PORT=${MINIO_PORT:-9000}
LOCAL_KMS_PORT=${LOCAL_KMS_PORT:-4599}

# S3: MinIO on loopback. Plain http:// is accepted only for 127.0.0.0/8, localhost and [::1];
# any other http:// endpoint is refused unless kmscrypt.allowHttp=true (KMSCRYPT_ALLOW_HTTP=1).
# With an endpoint set, kmscrypt uses path-style addressing, which MinIO needs.
export AWS_ENDPOINT_URL_S3="http://127.0.0.1:${MINIO_PORT}"
export AWS_ACCESS_KEY_ID=kmscrypt-dev
export AWS_SECRET_ACCESS_KEY=kmscrypt-dev-secret
# MinIO's default region. kmscrypt uses the same region for KMS (the local KMS ignores it).
# AWS_DEFAULT_REGION is for the AWS CLI v1, which does not read AWS_REGION.
export AWS_REGION=us-east-1
export AWS_DEFAULT_REGION=us-east-1

# Keys: the AWS KMS provider (the default for S3 URLs anyway), talking to `git kmscrypt local-kms`.
# The local KMS accepts any SigV4 credentials, so the MinIO keys above serve for both.
export KMSCRYPT_KMS=aws
export AWS_ENDPOINT_URL_KMS="http://127.0.0.1:${LOCAL_KMS_PORT}"

# Leftovers from a real AWS session would be sent to MinIO and rejected.
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL

echo "kmscrypt: S3 ${AWS_ENDPOINT_URL_S3} (MinIO), KMS ${AWS_ENDPOINT_URL_KMS} (local KMS); try: git push kmscrypt::s3://kmscrypt-dev/my-repo main"
