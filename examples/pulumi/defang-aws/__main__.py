# Copied from Defang's published example for pulumi-defang-aws 2.10.5 (the package's README on
# PyPI, "source: examples/aws-python/__main__.py" of https://github.com/DefangLabs/pulumi-defang,
# Apache License 2.0, Copyright DefangLabs). Changed: only its import, which was
#     import pulumi_defang_aws as defang_aws
import pulumi

import pulumi_dockyard as defang_aws

aws_demo = defang_aws.Project("aws-demo", services={
    "app": {
        "image": "nginx",
        "ports": [{
            "target": 80,
            "mode": "ingress",
            "app_protocol": "http",
        }],
    },
})
pulumi.export("endpoints", aws_demo.endpoints)
