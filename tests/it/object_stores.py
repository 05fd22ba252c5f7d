"""What a reader of an object store sees, through the stores' own SDKs (not pcrecon's client).

usage: object_stores.py KIND ENDPOINT CONTAINER ACTION [ARGS]
  KIND      azure (Azurite's devstoreaccount1) or s3 (moto, any key)
  create                    make the container or bucket
  tree PREFIX               {relative name: sha256} of every object below PREFIX, as JSON
  get NAME                  the object's bytes on stdout ("" and exit 3 if there is none)
  put NAME                  stdin becomes the object
"""
import hashlib
import json
import sys

AZURITE_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="

kind, endpoint, container, action, *args = sys.argv[1:]

if kind == "azure":
    from azure.core.exceptions import ResourceNotFoundError
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(
        account_url=f"{endpoint}/devstoreaccount1",
        credential={"account_name": "devstoreaccount1", "account_key": AZURITE_KEY},
    )
    client = service.get_container_client(container)

    def create():
        client.create_container()

    def names(prefix):
        return [b.name for b in client.list_blobs(name_starts_with=prefix)]

    def get(name):
        try:
            return client.download_blob(name).readall()
        except ResourceNotFoundError:
            return None

    def put(name, data):
        client.upload_blob(name, data, overwrite=True)

else:
    import boto3

    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        region_name="us-east-1",
    )

    def create():
        s3.create_bucket(Bucket=container)

    def names(prefix):
        found = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=container, Prefix=prefix):
            found.extend(o["Key"] for o in page.get("Contents", []))
        return found

    def get(name):
        try:
            return s3.get_object(Bucket=container, Key=name)["Body"].read()
        except s3.exceptions.NoSuchKey:
            return None

    def put(name, data):
        s3.put_object(Bucket=container, Key=name, Body=data)


if action == "create":
    create()
elif action == "tree":
    prefix = args[0].rstrip("/") + "/"
    tree = {name[len(prefix):]: hashlib.sha256(get(name)).hexdigest() for name in names(prefix)}
    print(json.dumps(tree, sort_keys=True))
elif action == "get":
    data = get(args[0])
    if data is None:
        sys.exit(3)
    sys.stdout.buffer.write(data)
elif action == "put":
    put(args[0], sys.stdin.buffer.read())
else:
    sys.exit(f"unknown action {action}")
