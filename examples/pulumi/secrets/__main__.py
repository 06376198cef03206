"""A secret of the stack (`pulumi config set --secret greeting-password ...`) given to a
service's environment. It becomes the Dockyard config PASSWORD of project `greeting`
(encrypted on the server, filled in when the server deploys): Pulumi's state keeps it
encrypted, and neither the deployment's record nor `ps` nor the logs show it.
"""

import pulumi

import pulumi_dockyard as dockyard

config = pulumi.Config()

greeting = dockyard.Project("greeting", services={
    "app": {
        "image": "dockyard/busybox:1",
        "command": ["sh", "-c", 'echo "${#PASSWORD} characters"; exec sleep 3600'],
        "environment": {
            "GREETING": "hello",
            "PASSWORD": config.require_secret("greeting-password"),
        },
    },
})

pulumi.export("services", greeting.services)
