"""What runs in Meridian's containers: one package per image (trainer, server, edge), plus the
model code they share (tasks, localization, registry). Imports no Pulumi and no components."""
