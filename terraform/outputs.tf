# What the next tool needs: addresses for Ansible, commands for a person.
# scripts/aws/inventory_from_outputs.py turns `terraform output -json` into
# inventories/aws/hosts.yml, reading the ansible_host output.

output "instance_id" {
  description = "ID of the appliance's EC2 instance (the SSM target)."
  value       = aws_instance.appliance.id
}

output "public_ip" {
  description = "Public IPv4 address of the appliance (changes if the instance is stopped and started)."
  value       = aws_instance.appliance.public_ip
}

output "public_dns" {
  description = "Public DNS name of the appliance."
  value       = aws_instance.appliance.public_dns
}

output "region" {
  description = "Region the appliance runs in."
  value       = var.region
}

output "ami_id" {
  description = "The Debian 12 image the instance was built from."
  value       = aws_instance.appliance.ami
}

output "ssh_command" {
  description = "Log in to the appliance."
  value       = "ssh -i ${local.ssh_private_key_path} ${local.ssh_user}@${aws_instance.appliance.public_ip}"
}

output "tunnel_command" {
  description = "Forward Metabase (3000) and the Spark master (8080) and driver (4040) UIs to localhost over SSH; what `make tunnel` runs."
  value       = "ssh -i ${local.ssh_private_key_path} -N ${local.tunnel_forwards} ${local.ssh_user}@${aws_instance.appliance.public_ip}"
}

output "tunnel_command_ssm" {
  description = "The same tunnel through SSM Session Manager instead of port 22 (needs the AWS CLI and its session-manager-plugin); what `make tunnel-ssm` runs."
  value       = "ssh -i ${local.ssh_private_key_path} -N ${local.tunnel_forwards} -o ProxyCommand='aws ssm start-session --region ${var.region} --target %h --document-name AWS-StartSSHSession --parameters portNumber=%p' ${local.ssh_user}@${aws_instance.appliance.id}"
}

output "ansible_host" {
  description = "The host as Ansible needs it: inventory name (the Name tag, as the dynamic inventory names it too), group, address, login."
  value = {
    name             = var.name
    group            = "appliance"
    address          = aws_instance.appliance.public_ip
    user             = local.ssh_user
    private_key_file = local.ssh_private_key_path
    instance_id      = aws_instance.appliance.id
    region           = var.region
    # The common role mounts this volume (found by its id) at the appliance's data folder.
    data_volume_id = aws_ebs_volume.data.id
  }
}

output "data_volume_id" {
  description = "ID of the data volume (on the host: the NVMe disk whose serial is this ID without its hyphen)."
  value       = aws_ebs_volume.data.id
}

output "alarms_topic_arn" {
  description = "SNS topic the alarms publish to: subscribe a pager, chat or e-mail to it."
  value       = aws_sns_topic.alarms.arn
}
