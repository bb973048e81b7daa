// Package deploy holds tests that keep the deployment files honest.
package deploy
