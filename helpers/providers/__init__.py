"""Fine-tuning at a provider: what differs between OpenAI and Azure OpenAI (one table), clients,
uploads and jobs, and Azure deployments."""
