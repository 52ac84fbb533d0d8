"""An offline stand-in for OpenAI's and Azure OpenAI's fine-tuning APIs that really trains.

The SDK clients it makes (`openai_client`, `azure_client`) send every request to an in-process
`Emulator` through an HTTP transport. It implements files, fine-tuning jobs (events, checkpoints,
cancel, the metadata filter, cursor pagination), models and chat completions, and Azure's
deployments on management.azure.com, each in the chosen provider's shapes. A job validates its file
with `helpers.data.validate`, then trains a LoRA adapter on the embedded SmolLM2-135M-Instruct with
the course's recipe for a bounded number of steps: the losses in its events are real, and chat
completions on the fine-tuned model answer with the trained adapter.

Its parts import one way: `clients` -> `server` (state and routes) -> `worker` (a job), `chat`,
`azure` (deployments) -> `common`. The learner's helpers never import it, except `helpers.providers.api`,
which loads it for a dry run; deleting this folder leaves every live path working.
"""

from emulator.azure import resource
from emulator.clients import azure_client, client, management_client, openai_client
from emulator.server import Emulator, Faults

__all__ = ["Emulator", "Faults", "azure_client", "client", "management_client", "openai_client", "resource"]
