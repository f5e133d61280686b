"""Versions that must match between training and serving."""

from __future__ import annotations

import xgboost as xgb

CONTAINER_FRAMEWORK_VERSION = "3.0-5"  # sagemaker-xgboost image tag; ships xgboost 3.0.5
XGBOOST_VERSION = xgb.__version__

# ECR accounts of the SageMaker XGBoost images (sagemaker.core.image_uris' table), for the regions we name
# without importing the (slow, optional) SageMaker SDK; other regions ask the SDK.
_XGBOOST_ACCOUNTS = {
    "us-east-1": "683313688378",
    "us-east-2": "257758044811",
    "us-west-2": "246618743249",
    "eu-west-1": "141502667606",
    "eu-central-1": "492215442770",
}


def container_image(region: str = "us-east-1", version: str = CONTAINER_FRAMEWORK_VERSION) -> str:
    account = _XGBOOST_ACCOUNTS.get(region)
    if account:
        return f"{account}.dkr.ecr.{region}.amazonaws.com/sagemaker-xgboost:{version}"
    from sagemaker.core import image_uris  # optional extra `sagemaker`

    return image_uris.retrieve("xgboost", region, version)
