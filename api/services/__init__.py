"""What the routers do beyond HTTP: creating tasks, steering their workflows, reading them."""
