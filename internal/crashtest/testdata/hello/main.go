// Command hello is what crashtest's test builds with Build.
package main

import "fmt"

func main() { fmt.Println("hello from a built command") }
