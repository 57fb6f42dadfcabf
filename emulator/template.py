"""Reads template.yaml - the single source of truth for what exists - and resolves what the local stack
needs from it: parameters, intrinsic functions, functions with their handlers and environment, tables."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
TEMPLATE_PATH = ROOT / "template.yaml"
ACCOUNT_ID = "123456789012"
REGION = "ap-southeast-3"
LOCAL_STAGE = "local"


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that understands CloudFormation's short-form tags (!Ref, !GetAtt, !Sub ...)."""


def _tag(name: str):
    def construct(loader: yaml.SafeLoader, node: yaml.Node) -> dict[str, Any]:
        if isinstance(node, yaml.ScalarNode):
            value: Any = loader.construct_scalar(node)
            if name == "Fn::GetAtt":
                value = value.split(".", 1)
        elif isinstance(node, yaml.SequenceNode):
            value = loader.construct_sequence(node, deep=True)
        else:
            value = loader.construct_mapping(node, deep=True)
        return {name: value}

    return construct


for _short in ("Ref", "Condition"):
    _CfnLoader.add_constructor(f"!{_short}", _tag(_short))
for _short in (
    "GetAtt",
    "Sub",
    "If",
    "Not",
    "Equals",
    "And",
    "Or",
    "Join",
    "Select",
    "Split",
    "FindInMap",
    "Base64",
):
    _CfnLoader.add_constructor(f"!{_short}", _tag(f"Fn::{_short}"))


def load_yaml(path: Path) -> dict[str, Any]:
    with path.open() as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506 - SafeLoader subclass with CFN tags only


def physical_name(logical_id: str, resource_type: str) -> str:
    """The name a resource gets in the local stack: its logical id (stable, readable in logs)."""
    del resource_type
    return logical_id


def arn(resource_type: str, name: str) -> str:
    service_prefix = {
        "AWS::DynamoDB::Table": f"arn:aws:dynamodb:{REGION}:{ACCOUNT_ID}:table/{name}",
        "AWS::SQS::Queue": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{name}",
        "AWS::Events::EventBus": f"arn:aws:events:{REGION}:{ACCOUNT_ID}:event-bus/{name}",
        "AWS::Serverless::Function": f"arn:aws:lambda:{REGION}:{ACCOUNT_ID}:function:{name}",
        "AWS::Serverless::StateMachine": f"arn:aws:states:{REGION}:{ACCOUNT_ID}:stateMachine:{name}",
        "AWS::SNS::Topic": f"arn:aws:sns:{REGION}:{ACCOUNT_ID}:{name}",
        "AWS::Cognito::UserPool": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT_ID}:userpool/{name}",
    }
    return service_prefix.get(resource_type, f"arn:aws:local:{REGION}:{ACCOUNT_ID}:{name}")


@dataclass
class FunctionSpec:
    logical_id: str
    code_uri: Path
    handler: str
    environment: dict[str, str]
    events: dict[str, dict[str, Any]]
    properties: dict[str, Any]
    timeout: int = 3
    memory_size: int = 128
    runtime: str = "python3.12"
    function_url: dict[str, Any] | None = None
    event_invoke_config: dict[str, Any] = field(default_factory=dict)

    @property
    def module_file(self) -> Path:
        return self.code_uri / f"{self.handler.rsplit('.', 1)[0]}.py"

    @property
    def handler_name(self) -> str:
        return self.handler.rsplit(".", 1)[1]

    @property
    def function_name(self) -> str:
        return self.logical_id

    @property
    def arn(self) -> str:
        return arn("AWS::Serverless::Function", self.function_name)


@dataclass
class StateMachineSpec:
    logical_id: str
    definition: str
    events: dict[str, dict[str, Any]]

    @property
    def name(self) -> str:
        return physical_name(self.logical_id, "AWS::Serverless::StateMachine")

    @property
    def arn(self) -> str:
        return arn("AWS::Serverless::StateMachine", self.name)


@dataclass
class Template:
    body: dict[str, Any]
    root: Path = ROOT
    parameter_overrides: dict[str, str] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path = TEMPLATE_PATH, parameter_overrides: Mapping[str, str] | None = None) -> Template:
        overrides = {"Stage": LOCAL_STAGE, **(parameter_overrides or {})}
        return cls(load_yaml(path), path.parent, overrides)

    @property
    def resources(self) -> dict[str, dict[str, Any]]:
        return self.body.get("Resources", {})

    def of_type(self, resource_type: str) -> dict[str, dict[str, Any]]:
        return {k: v for k, v in self.resources.items() if v.get("Type") == resource_type}

    def parameter(self, name: str) -> str:
        if name in self.parameter_overrides:
            return str(self.parameter_overrides[name])
        return str(self.body.get("Parameters", {}).get(name, {}).get("Default", ""))

    # ---- intrinsic functions
    def ref(self, name: str) -> Any:
        pseudo = {
            "AWS::Region": REGION,
            "AWS::AccountId": ACCOUNT_ID,
            "AWS::Partition": "aws",
            "AWS::StackName": "patungan-local",
        }
        if name in pseudo:
            return pseudo[name]
        if name == "AWS::NoValue":
            return None
        if name in self.body.get("Parameters", {}):
            return self.parameter(name)
        resource = self.resources[name]
        rtype = resource["Type"]
        physical = physical_name(name, rtype)
        if rtype in {"AWS::SQS::Queue"}:
            return f"http://sqs.{REGION}.localhost.localstack.cloud:4566/{ACCOUNT_ID}/{physical}"
        if rtype in {"AWS::Serverless::StateMachine", "AWS::SNS::Topic"}:
            return arn(rtype, physical)
        return physical

    def get_att(self, name: str, attribute: str) -> Any:
        rtype = self.resources[name]["Type"]
        physical = physical_name(name, rtype)
        if attribute == "Arn":
            return arn(rtype, physical)
        if attribute == "StreamArn":
            return f"{arn(rtype, physical)}/stream/local"
        if attribute in {"QueueName", "Name"}:
            return physical
        if attribute == "QueueUrl":
            return self.ref(name)
        raise KeyError(f"{name}.{attribute} is not supported by the local stack")

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.body.get("Conditions", {})[name]))

    def resolve(self, value: Any) -> Any:
        """Evaluate intrinsic functions in ``value`` for the local stack."""
        if isinstance(value, list):
            return [r for r in (self.resolve(v) for v in value) if r is not None]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            intrinsic = self._intrinsics().get(key)
            if intrinsic is not None:
                return intrinsic(arg)
        return {k: self.resolve(v) for k, v in value.items()}

    def _intrinsics(self) -> dict[str, Any]:
        return {
            "Ref": self.ref,
            "Fn::GetAtt": lambda arg: self.get_att(*(arg if isinstance(arg, list) else arg.split(".", 1))),
            "Fn::Sub": self._sub,
            "Fn::If": lambda arg: self.resolve(arg[1] if self.condition(arg[0]) else arg[2]),
            "Fn::Not": lambda arg: not self.resolve(arg[0]),
            "Fn::Equals": lambda arg: self.resolve(arg[0]) == self.resolve(arg[1]),
            "Fn::And": lambda arg: all(self.resolve(a) for a in arg),
            "Fn::Or": lambda arg: any(self.resolve(a) for a in arg),
            "Condition": self.condition,
            "Fn::Join": lambda arg: str(arg[0]).join(str(self.resolve(v)) for v in arg[1]),
            "Fn::Select": lambda arg: self.resolve(arg[1])[int(self.resolve(arg[0]))],
        }

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], arg[1])

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables:
                return str(self.resolve(variables[name]))
            if "." in name and not name.startswith("AWS::"):
                resource, attribute = name.split(".", 1)
                return str(self.get_att(resource, attribute))
            return str(self.ref(name))

        return re.sub(r"\$\{([^}!]+)\}", replace, text)

    # ---- functions
    def functions(self) -> dict[str, FunctionSpec]:
        globals_fn = self.body.get("Globals", {}).get("Function", {})
        global_env = globals_fn.get("Environment", {}).get("Variables", {})
        specs = {}
        for logical_id, resource in self.of_type("AWS::Serverless::Function").items():
            props = resource.get("Properties", {})
            env = {**global_env, **props.get("Environment", {}).get("Variables", {})}
            settings = {**globals_fn, **props}
            url_config = settings.get("FunctionUrlConfig")
            invoke_config = settings.get("EventInvokeConfig")
            specs[logical_id] = FunctionSpec(
                logical_id=logical_id,
                code_uri=(self.root / props["CodeUri"]).resolve(),
                handler=props["Handler"],
                environment={k: str(v) for k, v in self.resolve(env).items() if v is not None},
                events=props.get("Events", {}) or {},
                properties=props,
                timeout=int(self.resolve(settings.get("Timeout", 3))),
                memory_size=int(self.resolve(settings.get("MemorySize", 128))),
                runtime=str(self.resolve(settings.get("Runtime", "python3.12"))),
                function_url=self.resolve(url_config) if url_config is not None else None,
                event_invoke_config=self.resolve(invoke_config) if invoke_config is not None else {},
            )
        return specs

    def layer_paths(self) -> list[Path]:
        """Where each layer's code lives (a python3.12 BuildMethod layer puts its ContentUri on the path)."""
        return [
            (self.root / resource["Properties"]["ContentUri"]).resolve()
            for resource in self.of_type("AWS::Serverless::LayerVersion").values()
        ]

    # ---- state machines
    def state_machines(self) -> dict[str, StateMachineSpec]:
        """Every AWS::Serverless::StateMachine with its ASL, ``DefinitionSubstitutions`` applied."""
        specs = {}
        for logical_id, resource in self.of_type("AWS::Serverless::StateMachine").items():
            props = resource.get("Properties", {})
            if "DefinitionUri" in props:
                definition = (self.root / props["DefinitionUri"]).read_text()
            else:
                definition = json.dumps(props["Definition"])
            for name, value in self.resolve(props.get("DefinitionSubstitutions", {})).items():
                definition = definition.replace(f"${{{name}}}", str(value))
            specs[logical_id] = StateMachineSpec(logical_id, definition, props.get("Events", {}) or {})
        return specs

    def api_routes(self) -> list[tuple[str, str, str, bool]]:
        """(method, path, function logical id, needs auth) for every API event of every function."""
        default_auth = bool(
            self.of_type("AWS::Serverless::Api")
            and any(
                r.get("Properties", {}).get("Auth", {}).get("DefaultAuthorizer")
                for r in self.of_type("AWS::Serverless::Api").values()
            )
        )
        routes = []
        for spec in self.functions().values():
            for event in spec.events.values():
                if event.get("Type") != "Api":
                    continue
                props = event["Properties"]
                authorizer = (props.get("Auth") or {}).get("Authorizer")
                needs_auth = default_auth if authorizer is None else authorizer != "NONE"
                routes.append((props["Method"].upper(), props["Path"], spec.logical_id, needs_auth))
        return routes

    # ---- tables
    def table_definitions(self) -> dict[str, dict[str, Any]]:
        """``create_table`` arguments for every AWS::DynamoDB::Table, exactly as the template declares it."""
        definitions = {}
        for logical_id, resource in self.of_type("AWS::DynamoDB::Table").items():
            props = self.resolve(resource["Properties"])
            args: dict[str, Any] = {
                "TableName": physical_name(logical_id, "AWS::DynamoDB::Table"),
                "AttributeDefinitions": props["AttributeDefinitions"],
                "KeySchema": props["KeySchema"],
                "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
            }
            if props.get("GlobalSecondaryIndexes"):
                args["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
            if props.get("StreamSpecification"):
                args["StreamSpecification"] = {"StreamEnabled": True, **props["StreamSpecification"]}
            definitions[logical_id] = args
        return definitions


def create_tables(dynamodb_client: Any, template: Template) -> dict[str, str]:
    """Create every table of the template; returns logical id → table name."""
    names = {}
    for logical_id, args in template.table_definitions().items():
        dynamodb_client.create_table(**args)
        names[logical_id] = args["TableName"]
    return names
