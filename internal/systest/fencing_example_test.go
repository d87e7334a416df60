package systest_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/lifeguardhq/lifeguard/internal/jobs"
)

// TestFencingExample runs the fenced-write job of docs/leader.md, as
// written, as a leader-only command with the AWS CLI against moto_server:
// writes with the same or a newer fencing token succeed, a write with an
// older one fails and changes nothing.
func TestFencingExample(t *testing.T) {
	awsCLI(t, "") // the first aws on PATH, whatever its version
	url := startMoto(t)
	var script string
	for _, b := range shellBlocks(t, "../../docs/leader.md") {
		if strings.HasPrefix(b, "#!/bin/sh\n# fenced-write:") {
			script = b
		}
	}
	if script == "" {
		t.Fatal("docs/leader.md has no ```sh block starting with the fenced-write job")
	}
	path := filepath.Join(t.TempDir(), "fenced-write")
	if err := os.WriteFile(path, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}

	db := dynamodb.NewFromConfig(aws.Config{
		Region: "us-east-1", BaseEndpoint: aws.String(url),
		Credentials: credentials.NewStaticCredentialsProvider("AKIDFENCE", "fence-secret", ""),
	})
	if _, err := db.CreateTable(t.Context(), &dynamodb.CreateTableInput{
		TableName:            aws.String("reports"),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{{AttributeName: aws.String("id"), AttributeType: ddbtypes.ScalarAttributeTypeS}},
		KeySchema:            []ddbtypes.KeySchemaElement{{AttributeName: aws.String("id"), KeyType: ddbtypes.KeyTypeHash}},
		BillingMode:          ddbtypes.BillingModePayPerRequest,
	}); err != nil {
		t.Fatal(err)
	}
	env := append(cleanShellEnv(t), "AWS_ENDPOINT_URL="+url, "AWS_DEFAULT_REGION=us-east-1",
		"AWS_ACCESS_KEY_ID=AKIDFENCE", "AWS_SECRET_ACCESS_KEY=fence-secret")

	for _, step := range []struct {
		name      string
		token     uint64
		report    string
		ok        bool
		wantBody  string
		wantToken string
	}{
		{"the first write creates the item", 5, "from leader 5", true, "from leader 5", "5"},
		{"a newer leader overwrites", 7, "from leader 7", true, "from leader 7", "7"},
		{"a deposed leader is refused", 6, "from leader 6", false, "from leader 7", "7"},
		{"the same leader writes again", 7, "again from leader 7", true, "again from leader 7", "7"},
	} {
		var out bytes.Buffer
		res, err := jobs.RunLeaderOnly(t.Context(), jobs.LeaderOnly{
			Argv: []string{path}, Env: append(env, "REPORT="+step.report), Stdout: &out, Stderr: &out,
			Token: step.token, Deadline: time.Now().Add(10 * time.Second), Grace: time.Second, Timeout: time.Minute,
		})
		if err != nil {
			t.Fatalf("%s: %v", step.name, err)
		}
		if ok := res.ExitCode == 0; ok != step.ok {
			t.Errorf("%s: %s, output:\n%s", step.name, res, out.String())
		}
		if !step.ok && !strings.Contains(out.String(), "ConditionalCheckFailedException") {
			t.Errorf("%s: output %q; want the ConditionalCheckFailedException", step.name, out.String())
		}
		item, err := db.GetItem(t.Context(), &dynamodb.GetItemInput{
			TableName: aws.String("reports"), ConsistentRead: aws.Bool(true),
			Key: map[string]ddbtypes.AttributeValue{"id": &ddbtypes.AttributeValueMemberS{Value: "daily"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		body, _ := item.Item["body"].(*ddbtypes.AttributeValueMemberS)
		token, _ := item.Item["token"].(*ddbtypes.AttributeValueMemberN)
		if body == nil || token == nil || body.Value != step.wantBody || token.Value != step.wantToken {
			t.Errorf("%s: item %v; want body %q, token %s", step.name, item.Item, step.wantBody, step.wantToken)
		}
	}
}
